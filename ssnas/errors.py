"""One exception per domain, each naming the file and field at fault.

They live apart from the modules that raise them so that the CLI can catch them without importing
torch.
"""


class SsnasError(Exception):
    """Base of every error ssnas reports to a user as one line."""


class GenotypeError(SsnasError, ValueError):
    """A genotype that does not describe a valid network (names the offending field)."""


class DatasetError(SsnasError, ValueError):
    """A dataset file or configuration that cannot be read (names the path and the key)."""


class ConfigError(SsnasError, ValueError):
    """A stage configuration value that is out of range or inconsistent."""
