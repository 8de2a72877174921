"""ssnas: self-supervised architecture search for multimodal fusion networks.

Importing the package stays cheap (no torch); heavy modules are imported where they are used.
"""

__version__ = "0.1.0"
