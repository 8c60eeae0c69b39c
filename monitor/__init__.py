"""app-monitor: watches a web application's data tier and user experience."""

__version__ = "0.1.0"
