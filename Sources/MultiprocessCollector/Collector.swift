// Merge and exposition live here.
