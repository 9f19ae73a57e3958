"""Detectors: each turns analysed clips into scores behind the small interface in :mod:`.base`."""
