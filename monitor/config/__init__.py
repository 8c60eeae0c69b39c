"""Alerting configuration (moving beside the alerting code in alerts/)."""
