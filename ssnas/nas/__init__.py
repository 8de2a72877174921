"""The BM-NAS fusion search space: primitives, supernet, fixed network, genotype."""
