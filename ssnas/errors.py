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


class RegistryError(SsnasError, ValueError):
    """A run registry that cannot be opened or queried, or a run that does not exist (names the path)."""


class RecipeError(SsnasError, ValueError):
    """A recipe (TOML file, --set override or stored config) that cannot run (names the file and the key)."""


class ClusterError(SsnasError, RuntimeError):
    """A Ray cluster that cannot be used: Ray not installed, no cluster at the address, no head there."""
