"""What this host is and can do: the fingerprint stored in reports and the doctor's probes."""
