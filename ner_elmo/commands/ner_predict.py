"""Not written yet: placeholder so the package imports while components are built."""
