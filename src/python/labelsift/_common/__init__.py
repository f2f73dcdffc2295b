"""Shared by every method: the one conversion point, the compiled-module
loader, shared checks and vocabulary, and stage timing."""
