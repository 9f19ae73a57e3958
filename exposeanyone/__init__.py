"""ExposeAnyone: is this talking-head video really them?

Enroll a person from genuine reference clips, then score a suspicious clip: a personalised
audio-to-expression diffusion model (EXAM) predicts how this person's face moves for the clip's
audio, and the clip is judged by how much better the person's model explains it than a generic one.
"""
__version__ = "0.1.0"
