"""What a run leaves on disk: the results layout, atomic writes, the run guard."""
