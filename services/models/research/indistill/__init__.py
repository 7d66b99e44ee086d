"""InDistill (source document 3.2.1): channel-pruned teacher layers distilled into a student, layer by layer."""
