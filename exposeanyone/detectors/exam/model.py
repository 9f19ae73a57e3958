"""EXAM: a small audio-to-expression diffusion transformer with identity adapter tokens.

The network denoises a window of expression coefficients (52 MediaPipe blendshapes + 6 head-pose
values per frame) conditioned on the audio features of the same window (``config.audio_features``:
frozen Whisper-base encoder features, or log-mel), on the diffusion timestep, and
on a person's *adapter tokens*. A learned set of null tokens stands for "no identity", so one backbone
is both the generic model and, with a person's tokens, that person's model; the detector compares the
two (see :mod:`exposeanyone.detectors.exam.detector`).

Design decisions (kept here because the saved weights depend on them):

* **Prediction type ``"v_prediction"``.** The detector scores the reconstructed clean window (x0), and
  with v-prediction that is ``x0 = sqrt(a) x_t - sqrt(1 - a) v``: at low noise it falls back on the
  input itself, so the network's output matters only where the noise has destroyed the input, which
  is where audio and identity must supply it. An x0-predicting network ("sample", the choice of MDM
  or DiffPoseTalk) must reproduce every input itself; pre-trained on few speakers, it pulled other
  people's wider movements toward what it knew even at the lowest noise, an error shared by genuine
  and dubbed clips alike (10-minute avdata runs: mouth error at t=50 on the persons of interest 0.74
  normalised units with x0 prediction, 0.01 with v prediction; the normalisation statistics were
  also made identity-balanced between those two runs).
* **Expressions are relative to the window.** Every channel has its window mean removed before
  normalisation. Where the head sits is mostly the camera set-up, and a blendshape's resting level is
  mostly the face's shape, the light and the tracker's bias; how the face moves while talking is the
  talking identity. Absolute levels also made a model pre-trained on few speakers useless on anybody
  else (their resting levels lay far outside what it had seen), and they let a person's tokens win
  on static looks alone, identically for genuine and dubbed clips. ``center_blendshapes=False``
  centres only the head pose.
* **Audio is mean-normalised per window and per channel** (cepstral-mean style on log-mel) before the
  stored per-channel scale: loudness and microphone colouring change between recordings, not between
  people.
* **Normalisation statistics are buffers**, so ``save_pretrained`` / ``from_pretrained`` carry them.
* **Two frames per token** (80 ms, shorter than a viseme), as DiT patches images: it halves the cost of
  every pass, which on a CPU decides how many noise draws a clip can be scored with; the output layer
  still predicts every frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

POSE_CHANNELS = slice(52, 58)
"""Head rotation and translation inside the 58 expression channels."""
MIN_CHANNEL_STD = 1e-2
"""Floor of a channel's scale, so that a nearly constant channel is not blown up into noise."""


@dataclass
class ExamDenoiserOutput(BaseOutput):
    """Output of :class:`ExamDenoiser`.

    Args:
        sample: ``(batch, frames, n_channels)`` the prediction of the type named by
            ``config.prediction_type`` (the clean normalised expressions for ``"sample"``).
    """

    sample: torch.Tensor


class _AudioEncoder(nn.Module):
    """Audio features at ``mel_per_token`` x the token rate to one feature per token.

    Two residual 5-tap convolutions at the token rate give every token +-4 tokens (+-320 ms) of audio
    context, so a constant audio/video offset of a frame or two still finds the matching sound.
    """

    def __init__(self, n_mels: int, mel_per_token: int, width: int):
        super().__init__()
        self.mel_conv = nn.Conv1d(n_mels, width, kernel_size=3, padding=1)
        self.to_tokens = nn.Conv1d(width, width, kernel_size=mel_per_token, stride=mel_per_token)
        self.context = nn.ModuleList(nn.Conv1d(width, width, kernel_size=5, padding=2) for _ in range(2))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(batch, tokens * mel_per_token, n_mels)`` normalised audio -> ``(batch, tokens, width)``."""
        hidden = F.gelu(self.mel_conv(mel.transpose(1, 2)))
        hidden = self.to_tokens(hidden)
        for conv in self.context:
            hidden = hidden + conv(F.gelu(hidden))
        return hidden.transpose(1, 2)


def _modulate(hidden: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return hidden * (1 + scale[:, None]) + shift[:, None]


class _ModulatedBlock(nn.Module):
    """A pre-norm transformer block whose norms are shifted, scaled and gated by the condition.

    This is the adaLN-Zero block of DiT; the paper's "TiLM" is a modulation of this kind by timestep
    and identity. The modulation starts at zero, so every block starts as the identity map.
    """

    def __init__(self, width: int, heads: int, ff_mult: int, dropout: float):
        super().__init__()
        self.attn_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ff_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ff = nn.Sequential(
            nn.Linear(width, width * ff_mult), nn.GELU(approximate="tanh"), nn.Dropout(dropout),
            nn.Linear(width * ff_mult, width),
        )
        self.modulation = nn.Linear(width, 6 * width)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, hidden: torch.Tensor, condition: torch.Tensor,
                key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        shift_a, scale_a, gate_a, shift_f, scale_f, gate_f = self.modulation(F.silu(condition)).chunk(6, dim=1)
        attn_in = _modulate(self.attn_norm(hidden), shift_a, scale_a)
        attended, _ = self.attn(attn_in, attn_in, attn_in, key_padding_mask=key_padding_mask, need_weights=False)
        hidden = hidden + gate_a[:, None] * attended
        ff_in = _modulate(self.ff_norm(hidden), shift_f, scale_f)
        return hidden + gate_f[:, None] * self.ff(ff_in)


class ExamDenoiser(ModelMixin, ConfigMixin):
    """Audio-conditioned denoiser of expression windows, personalised by adapter tokens.

    Args:
        n_channels: expression channels per frame (52 blendshapes + 6 head pose).
        n_mels: channels of the audio features (80 log-mel bins; 512 Whisper-base dimensions).
        mel_per_frame: audio feature rows per video frame (4 for 100 Hz log-mel, 1 for Whisper at 25 Hz).
        window: frames per window; the longest sequence the positional embedding covers.
        frames_per_token: consecutive frames read and predicted by one transformer token.
        width: transformer width, also the size of each adapter token.
        layers: transformer blocks.
        heads: attention heads.
        ff_mult: feed-forward expansion.
        n_adapter_tokens: identity tokens prepended to the frame sequence.
        dropout: dropout in attention and feed-forward layers.
        center_blendshapes: remove each window's mean from the blendshapes too, not only from the pose.
        prediction_type: what the network outputs: ``"sample"`` (x0), ``"epsilon"`` or ``"v_prediction"``;
            the diffusion utilities build their schedulers from it.
        audio_features: which features the network hears, ``"whisper-base"`` (``clip.audio.encoded``)
            or ``"log-mel"`` (``clip.audio.mel``); see :func:`~exposeanyone.detectors.audio_inputs.clip_audio`.
    """

    @register_to_config
    def __init__(
        self,
        n_channels: int = 58,
        n_mels: int = 80,
        mel_per_frame: int = 4,
        window: int = 100,
        frames_per_token: int = 2,
        width: int = 128,
        layers: int = 4,
        heads: int = 4,
        ff_mult: int = 4,
        n_adapter_tokens: int = 4,
        dropout: float = 0.1,
        prediction_type: str = "v_prediction",
        center_blendshapes: bool = True,
        audio_features: str = "log-mel",
    ):
        super().__init__()
        if window % frames_per_token:
            raise ValueError("window must be a multiple of frames_per_token")
        self.register_buffer("expression_mean", torch.zeros(n_channels))
        self.register_buffer("expression_std", torch.ones(n_channels))
        self.register_buffer("mel_std", torch.ones(n_mels))

        self.input_proj = nn.Linear(frames_per_token * n_channels, width)
        self.audio_encoder = _AudioEncoder(n_mels, frames_per_token * mel_per_frame, width)
        self.frame_position = nn.Parameter(torch.randn(window // frames_per_token, width) * 0.02)
        self.token_position = nn.Parameter(torch.randn(n_adapter_tokens, width) * 0.02)
        self.null_adapter = nn.Parameter(torch.randn(n_adapter_tokens, width) * 0.02)
        """The "no identity" tokens: the generic model is this network with these tokens."""

        self.time_proj = Timesteps(width, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(width, width)
        self.identity_embedding = nn.Linear(width, width)
        self.blocks = nn.ModuleList(_ModulatedBlock(width, heads, ff_mult, dropout) for _ in range(layers))
        self.output_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.output_modulation = nn.Linear(width, 2 * width)
        self.output_proj = nn.Linear(width, frames_per_token * n_channels)
        for layer in (self.output_modulation, self.output_proj):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    # ----------------------------------------------------------------------------- normalisation
    def set_normalization(self, expression_mean: torch.Tensor, expression_std: torch.Tensor,
                          mel_std: torch.Tensor) -> None:
        """Store the statistics of the pre-training data.

        Args:
            expression_mean: ``(n_channels,)`` mean of window-relative expressions (~0 where centred).
            expression_std: ``(n_channels,)`` their standard deviation (floored at ``MIN_CHANNEL_STD``).
            mel_std: ``(n_mels,)`` standard deviation of the window-mean-removed log-mel.
        """
        self.expression_mean.copy_(torch.as_tensor(expression_mean, dtype=torch.float32))
        self.expression_std.copy_(torch.as_tensor(expression_std, dtype=torch.float32).clamp_min(MIN_CHANNEL_STD))
        self.mel_std.copy_(torch.as_tensor(mel_std, dtype=torch.float32).clamp_min(MIN_CHANNEL_STD))

    def window_offset(self, expressions: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """What is removed from each window: ``(batch, frames, 58)`` -> ``(batch, 58)``, the mean over
        known frames of the centred channels (0 for the others)."""
        if frame_mask is None:
            offset = expressions.mean(dim=1)
        else:
            weights = frame_mask.to(expressions.dtype)[..., None]
            offset = (expressions * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        if not self.config.center_blendshapes:
            offset = offset.clone()
            offset[:, :POSE_CHANNELS.start] = 0.0
        return offset

    def relative_expressions(self, expressions: torch.Tensor,
                             frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, frames, 58)`` with each window's offset (:meth:`window_offset`) removed."""
        return expressions - self.window_offset(expressions, frame_mask)[:, None]

    def normalize_expressions(self, expressions: torch.Tensor,
                              frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Raw expressions ``(batch, frames, 58)`` -> window-relative, standardised; unknown frames 0."""
        relative = self.relative_expressions(expressions, frame_mask)
        normalized = (relative - self.expression_mean) / self.expression_std
        if frame_mask is not None:
            normalized = normalized * frame_mask.to(normalized.dtype)[..., None]
        return normalized

    def denormalize_expressions(self, normalized: torch.Tensor,
                                offset: torch.Tensor | None = None) -> torch.Tensor:
        """Inverse of :meth:`normalize_expressions`: ``(batch, frames, 58)``; ``offset`` ``(batch, 58)``
        (from :meth:`window_offset`) puts each window back at its level, else it stays centred."""
        expressions = normalized * self.expression_std + self.expression_mean
        if offset is not None:
            expressions = expressions + offset[:, None]
        return expressions

    def normalize_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """Raw audio features ``(batch, frames * mel_per_frame, n_mels)`` -> per-window mean removed,
        scaled per channel."""
        return (mel - mel.mean(dim=1, keepdim=True)) / self.mel_std

    # ----------------------------------------------------------------------------- network
    def encode_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """Raw audio ``(batch, frames * mel_per_frame, n_mels)`` -> ``(batch, frames / frames_per_token, width)``."""
        per_token = self.config.mel_per_frame * self.config.frames_per_token
        if audio.shape[1] % per_token:
            raise ValueError(f"audio has {audio.shape[1]} rows, not a multiple of {per_token}")
        return self.audio_encoder(self.normalize_audio(audio))

    def expand_adapter(self, adapter_tokens: torch.Tensor | None, batch: int) -> torch.Tensor:
        """``None`` (the null adapter), ``(n_tokens, width)`` or ``(batch, n_tokens, width)`` ->
        ``(batch, n_tokens, width)``."""
        if adapter_tokens is None:
            adapter_tokens = self.null_adapter
        if adapter_tokens.dim() == 2:
            adapter_tokens = adapter_tokens[None]
        expected = tuple(self.null_adapter.shape)
        if tuple(adapter_tokens.shape[1:]) != expected:
            raise ValueError(f"adapter tokens must be (batch, {expected[0]}, {expected[1]}), "
                             f"got {tuple(adapter_tokens.shape)}")
        return adapter_tokens.to(self.null_adapter.dtype).expand(batch, -1, -1)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int,
        audio: torch.Tensor | None,
        adapter_tokens: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        encoded_audio: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> ExamDenoiserOutput | tuple[torch.Tensor]:
        """Predict the clean window (or the noise, see ``prediction_type``) from a noisy one.

        Args:
            sample: ``(batch, frames, n_channels)`` noisy *normalised* expressions, ``frames <= window``
                and a multiple of ``frames_per_token``.
            timestep: ``(batch,)`` or a scalar diffusion timestep.
            audio: ``(batch, frames * mel_per_frame, n_mels)`` *raw* audio features (normalised here).
            adapter_tokens: ``(batch, n_tokens, width)``, ``(n_tokens, width)`` or ``None`` for the
                null ("no identity") adapter.
            frame_mask: optional ``(batch, frames)`` bool, False where no face is known; tokens with
                no known frame are hidden from attention so that they cannot disturb the others.
            encoded_audio: optional ``(batch, tokens, width)`` from :meth:`encode_audio`, used instead
                of ``audio`` (which may then be ``None``) when one window is denoised many times.
            return_dict: return an :class:`ExamDenoiserOutput` rather than a tuple.
        Returns:
            ``(batch, frames, n_channels)`` prediction.
        """
        batch, frames, channels = sample.shape
        per_token = self.config.frames_per_token
        if frames > self.config.window or frames % per_token:
            raise ValueError(f"windows are at most {self.config.window} frames and a multiple of {per_token}, "
                             f"got {frames}")
        n_frame_tokens = frames // per_token
        if encoded_audio is None:
            encoded_audio = self.encode_audio(audio)
        if encoded_audio.shape[:2] != (batch, n_frame_tokens):
            raise ValueError(f"audio covers {tuple(encoded_audio.shape[:2])} (batch, tokens), "
                             f"expected {(batch, n_frame_tokens)}")
        timestep = torch.as_tensor(timestep, device=sample.device).reshape(-1).expand(batch)

        tokens = self.expand_adapter(adapter_tokens, batch)
        patches = sample.reshape(batch, n_frame_tokens, per_token * channels)
        frames_hidden = self.input_proj(patches) + encoded_audio + self.frame_position[:n_frame_tokens]
        hidden = torch.cat([tokens + self.token_position, frames_hidden], dim=1)

        time = self.time_embedding(self.time_proj(timestep).to(sample.dtype))
        condition = time + self.identity_embedding(tokens.mean(dim=1))

        key_padding_mask = None
        if frame_mask is not None:
            token_mask = torch.zeros(batch, tokens.shape[1], dtype=torch.bool, device=sample.device)
            known = frame_mask.bool().reshape(batch, n_frame_tokens, per_token).any(dim=2)
            key_padding_mask = torch.cat([token_mask, ~known], dim=1)
        for block in self.blocks:
            hidden = block(hidden, condition, key_padding_mask)

        shift, scale = self.output_modulation(F.silu(condition)).chunk(2, dim=1)
        hidden = _modulate(self.output_norm(hidden[:, tokens.shape[1]:]), shift, scale)
        prediction = self.output_proj(hidden).reshape(batch, frames, channels)
        if not return_dict:
            return (prediction,)
        return ExamDenoiserOutput(sample=prediction)
