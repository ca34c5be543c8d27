"""The stretchc version (`stretchc.__version__`), in a module of its own so that the modules that record it
(bundle manifests, dumps, the lowering cache's key) need not import the package's API."""

__version__ = "0.1.0"
