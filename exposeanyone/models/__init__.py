"""Neural networks (diffusers ``ModelMixin`` + ``ConfigMixin``), one per module."""
from .exam import ExamDenoiser, ExamDenoiserOutput

__all__ = ["ExamDenoiser", "ExamDenoiserOutput"]
