"""Config types and loading helpers shared by every section of the configuration."""
