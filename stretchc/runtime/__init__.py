"""Host reference runtime: executes a bundle exactly as its manifest says."""
