"""Delivery of "job at your doorstep" pushes: channels, the relay and the workers."""
