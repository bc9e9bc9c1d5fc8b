"""Gait events and spatiotemporal parameters from every modality (see `fusionlab.gait.base`)."""
