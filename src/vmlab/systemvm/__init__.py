"""The system-vm lab: a guest and a container from one root file system, side by side (`vmlab compare`)."""
