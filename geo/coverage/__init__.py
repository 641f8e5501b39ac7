"""Coverage of the 15-minute employment-service circle and job accessibility by transit."""
