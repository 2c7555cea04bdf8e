"""A video library indexed once, then tagged with any vocabulary and searched by text (see README.md)."""
