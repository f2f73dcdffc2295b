"""The k-NN consensus room: HOC (hoc.py, solver.py, consensus.py) and
SimiFeat (simifeat.py) over exact cosine neighbours (neighbours.py), with the
inputs' checks in inputs.py. The public names are in labelsift.noise."""
