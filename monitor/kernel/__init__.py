"""The ground floor: samples, snapshots, the snapshot store, exposition, scheduling,
the interfaces plug-ins implement, shared config types. Imports nothing above it."""
