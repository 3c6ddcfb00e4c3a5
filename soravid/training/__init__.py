"""Training soravid's models on shapes-world clips rendered on the fly."""
