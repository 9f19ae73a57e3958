"""FauForensics (arXiv 2505.08294), scaled down to run on a CPU from MediaPipe tracks.

The paper's visual stream adds a frozen action-unit encoder's features to a video network's; its audio
stream is a Whisper encoder. Here the visual stream adds an encoder of the blendshape-derived action
units (:mod:`exposeanyone.detectors.fau.action_units`) to a small CNN over the tracker's 32x32 mouth crops, and the
audio stream is a small convolutional encoder over the audio features named by ``config.audio_features``:
as in the paper, a frozen Whisper-base encoder's features (``"whisper-base"``, 512 values a video frame,
:mod:`exposeanyone.media.speech`), read at their own 25 Hz; or the 100 Hz log-mel (``"log-mel"``, the
default so that models saved before the Whisper features still load), pooled to 25 tokens per second.

The fusion follows the paper: ``T`` learnable queries, shared by both modalities, cross-attend to each
stream; the frame-wise outputs give three ``T x T`` cosine-similarity maps (audio-visual, audio-audio,
visual-visual), each with its own learnable temperature, which bias-free linear heads classify.

Three deliberate departures:

- the maps are normalised by a softmax over their second axis, not ``F.normalize``: an L2
  normalisation after a positive scale cancels the learnable temperature entirely;
- frame positions enter the attention keys only, not the values, so the similarity of two query
  outputs measures content rather than the positions they were read from;
- queries start out attending to their own frame (a learnable locality bias), and training may add a
  frame-alignment term to the loss (:func:`fau_loss`): both shorten the plateau before the alignment
  is found from scratch, which a CPU budget cannot afford.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.utils import BaseOutput
from torch import nn

from ..audio_inputs import audio_shape


@dataclass
class FauForensicsOutput(BaseOutput):
    """What :class:`FauForensicsModel` returns for a batch of 1 s windows.

    Logits are over ``(genuine, fake)``; maps are row-stochastic ``(batch, T, T)``.
    """

    joint_logits: torch.Tensor
    """``(batch, 2)`` from the audio-visual map: is the window fake at all."""
    audio_logits: torch.Tensor
    """``(batch, 2)`` from the audio-audio map: is the audio not the original."""
    visual_logits: torch.Tensor
    """``(batch, 2)`` from the visual-visual map: is the visual stream manipulated."""
    av_similarity: torch.Tensor
    """``(batch, T, T)``: row ``t`` is visual frame ``t``'s match distribution over audio frames."""
    aa_similarity: torch.Tensor
    """``(batch, T, T)`` audio frames against audio frames."""
    vv_similarity: torch.Tensor
    """``(batch, T, T)`` visual frames against visual frames."""

    def fake_probability(self) -> torch.Tensor:
        """``(batch,)`` softmax probability of the joint head's fake class."""
        return self.joint_logits.softmax(dim=-1)[:, 1]


def sinusoidal_positions(length: int, width: int) -> torch.Tensor:
    """``(length, width)`` fixed sinusoidal position codes (as in Whisper's audio encoder)."""
    half = width // 2
    frequencies = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32) / max(half - 1, 1))
    angles = torch.arange(length, dtype=torch.float32)[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class MouthEncoder(nn.Module):
    """Mouth crops to one token per frame: ``(batch, T, H, W)`` in [0, 1] -> ``(batch, T, width)``.

    Each window is standardised on its own (lighting and skin tone carry no sync information), and
    every frame is seen together with its difference from the previous one, which carries the motion.
    """

    def __init__(self, crop_size: int, channels: tuple[int, ...], width: int):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 2
        for out_channels in channels:
            # strided convolutions, not pooling: ten times faster on a CPU for the same receptive field
            layers += [nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1),
                       nn.GroupNorm(min(8, out_channels), out_channels), nn.GELU()]
            in_channels = out_channels
        self.frame_cnn = nn.Sequential(*layers)
        spatial = crop_size // 2 ** len(channels)
        self.project = nn.Linear(in_channels * spatial * spatial, width)
        self.temporal = nn.Conv1d(width, width, kernel_size=5, padding=2)
        self.norm = nn.LayerNorm(width)

    def forward(self, mouth: torch.Tensor) -> torch.Tensor:
        batch, frames, height, width = mouth.shape
        mean = mouth.mean(dim=(1, 2, 3), keepdim=True)
        std = mouth.std(dim=(1, 2, 3), keepdim=True)
        frames_normed = (mouth - mean) / (std + 1e-3)
        motion = torch.diff(frames_normed, dim=1, prepend=frames_normed[:, :1])
        stacked = torch.stack([frames_normed, motion], dim=2).reshape(batch * frames, 2, height, width)
        tokens = self.project(self.frame_cnn(stacked).flatten(1)).reshape(batch, frames, -1)
        tokens = tokens + self.temporal(F.gelu(tokens).transpose(1, 2)).transpose(1, 2)
        return self.norm(tokens)


class ActionUnitEncoder(nn.Module):
    """Action unit intensities to one token per frame: ``(batch, T, n_au)`` -> ``(batch, T, width)``."""

    def __init__(self, n_action_units: int, width: int):
        super().__init__()
        self.embed = nn.Conv1d(n_action_units, width, kernel_size=3, padding=1)
        self.temporal = nn.Conv1d(width, width, kernel_size=3, padding=1)
        self.norm = nn.LayerNorm(width)

    def forward(self, action_units: torch.Tensor) -> torch.Tensor:
        hidden = F.gelu(self.embed(action_units.transpose(1, 2)))
        return self.norm((hidden + self.temporal(hidden)).transpose(1, 2))


class AudioEncoder(nn.Module):
    """Audio features to one token per video frame: ``(batch, T * rows_per_frame, n_mels)`` -> ``(batch, T, width)``.

    ``log2(rows_per_frame)`` stride-2 convolutions bring the rows to the video rate: two for the 100 Hz
    log-mel (4 rows a frame), none for the 25 Hz Whisper features (1 row a frame).

    Each window is standardised on its own (per-channel mean removed, one overall scale). For log-mel
    this makes the microphone and the loudness irrelevant while the shape of the speech envelope
    stays; for Whisper features it removes what stays constant over the second (voice, channel,
    room) and keeps how the content changes from frame to frame, which is what the mouth must
    follow; the single scale keeps the relative size of the 512 channels.
    """

    def __init__(self, n_mels: int, width: int, rows_per_frame: int = 4):
        super().__init__()
        if rows_per_frame < 1 or rows_per_frame & (rows_per_frame - 1):
            raise ValueError(f"audio rows per video frame must be a power of 2, got {rows_per_frame}")
        self.embed = nn.Conv1d(n_mels, width, kernel_size=3, padding=1)
        self.down = nn.ModuleList([nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1)
                                   for _ in range(rows_per_frame.bit_length() - 1)])
        self.temporal = nn.Conv1d(width, width, kernel_size=3, padding=1)
        self.norm = nn.LayerNorm(width)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        centred = audio - audio.mean(dim=1, keepdim=True)
        scaled = centred / (centred.std(dim=(1, 2), keepdim=True) + 1e-3)
        hidden = F.gelu(self.embed(scaled.transpose(1, 2)))
        for layer in self.down:
            hidden = F.gelu(layer(hidden))
        hidden = hidden + self.temporal(hidden)
        return self.norm(hidden.transpose(1, 2))


class QueryCrossAttention(nn.Module):
    """Shared queries read one modality: ``(T, width)`` x ``(batch, S, width)`` -> ``(batch, T, width)``.

    Multi-query attention as in the paper's attentional pooler (many query heads, one key/value head);
    positions are added to the keys only. A learnable locality bias ``-slope_h |t - s|`` starts every
    query reading its own frame: the paper leaves the alignment to be learned from scratch, which
    takes far longer than a CPU training budget allows.
    """

    def __init__(self, width: int, heads: int, num_queries: int):
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.query_norm = nn.LayerNorm(width)
        self.context_norm = nn.LayerNorm(width)
        self.to_q = nn.Linear(width, heads * self.head_dim, bias=False)
        self.to_k = nn.Linear(width, self.head_dim, bias=False)
        self.to_v = nn.Linear(width, self.head_dim, bias=False)
        self.to_out = nn.Linear(heads * self.head_dim, width, bias=False)
        self.out_norm = nn.LayerNorm(width)
        self.log_locality = nn.Parameter(torch.zeros(heads))
        self.num_queries = num_queries

    def locality_bias(self, length: int) -> torch.Tensor:
        """``(heads, T, length)`` additive attention bias, 0 on a query's own frame."""
        query_frames = torch.arange(self.num_queries, device=self.log_locality.device, dtype=torch.float32)
        # queries are spread evenly over the context, whatever its length
        query_frames = query_frames * (length / self.num_queries)
        distance = (query_frames[:, None] - torch.arange(length, device=query_frames.device)[None]).abs()
        return -self.log_locality.exp()[:, None, None] * distance[None]

    def forward(self, queries: torch.Tensor, context: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        batch, length, _ = context.shape
        context = self.context_norm(context)
        q = self.to_q(self.query_norm(queries)).reshape(1, -1, self.heads, self.head_dim).transpose(1, 2)
        k = self.to_k(context + positions[:length]).unsqueeze(1)
        v = self.to_v(context).unsqueeze(1)
        q = q.expand(batch, -1, -1, -1)
        k, v = k.expand(-1, self.heads, -1, -1), v.expand(-1, self.heads, -1, -1)
        bias = self.locality_bias(length).to(q.dtype)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        attended = attended.transpose(1, 2).reshape(batch, -1, self.heads * self.head_dim)
        return self.out_norm(self.to_out(attended))


class FauForensicsModel(ModelMixin, ConfigMixin):
    """Audio-visual consistency classifier over 1 s windows (``num_frames`` video frames at 25 fps).

    Inputs of :meth:`forward`:

    - ``action_units``: ``(batch, T, n_action_units)`` in [0, 1] (:func:`blendshapes_to_action_units`);
    - ``mouth``: ``(batch, T, crop, crop)`` float grey mouth crops in [0, 1];
    - ``audio``: ``(batch, T * mel_per_frame, n_mels)`` audio features of the kind ``audio_features``:
      ``(batch, T, 512)`` Whisper-base features or ``(batch, T * 4, 80)`` natural-log mel power at 100 Hz
      (:func:`~exposeanyone.detectors.audio_inputs.clip_audio`).

    Args:
        audio_features: ``"whisper-base"`` (``clip.audio.encoded``; build with ``n_mels=512,
            mel_per_frame=1``, see :func:`model_config_for`) or ``"log-mel"`` (``clip.audio.mel``, the
            default, which the other defaults fit).
        n_mels: channels of the audio features (80 log-mel bins, 512 Whisper-base dimensions).
        mel_per_frame: audio rows per video frame (4 for log-mel, 1 for Whisper); a power of 2.
    """

    @register_to_config
    def __init__(self, n_action_units: int = 21, num_frames: int = 25, mel_per_frame: int = 4,
                 n_mels: int = 80, mouth_size: int = 32, width: int = 128, heads: int = 4,
                 mouth_channels: tuple[int, ...] = (16, 32, 64), max_logit_scale: float = 100.0,
                 audio_features: str = "log-mel"):
        super().__init__()
        if (n_mels, mel_per_frame) != audio_shape(audio_features):
            raise ValueError(f"{audio_features} audio features are {audio_shape(audio_features)} "
                             f"(channels, rows a frame), not {(n_mels, mel_per_frame)}; see model_config_for")
        self.mouth_encoder = MouthEncoder(mouth_size, tuple(mouth_channels), width)
        self.au_encoder = ActionUnitEncoder(n_action_units, width)
        self.audio_encoder = AudioEncoder(n_mels, width, mel_per_frame)
        self.queries = nn.Parameter(torch.randn(num_frames, width) * width ** -0.5)
        self.register_buffer("positions", sinusoidal_positions(num_frames, width), persistent=False)
        self.audio_attention = QueryCrossAttention(width, heads, num_frames)
        self.visual_attention = QueryCrossAttention(width, heads, num_frames)
        initial_scale = math.log(1 / 0.07)
        self.log_scale_av = nn.Parameter(torch.tensor(initial_scale))
        self.log_scale_aa = nn.Parameter(torch.tensor(initial_scale))
        self.log_scale_vv = nn.Parameter(torch.tensor(initial_scale))
        map_size = num_frames * num_frames
        self.joint_head = nn.Linear(map_size, 2, bias=False)
        self.audio_head = nn.Linear(map_size, 2, bias=False)
        self.visual_head = nn.Linear(map_size, 2, bias=False)

    def encode_visual(self, action_units: torch.Tensor, mouth: torch.Tensor) -> torch.Tensor:
        """The face's frame-aligned query outputs ``(batch, T, width)``; independent of the audio, so
        scoring one face against many soundtracks computes it once."""
        visual_tokens = self.mouth_encoder(mouth) + self.au_encoder(action_units)
        return self.visual_attention(self.queries, visual_tokens, self.positions)

    def encode_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """The audio's frame-aligned query outputs ``(batch, T, width)`` from ``(batch, T * mel_per_frame, n_mels)``."""
        return self.audio_attention(self.queries, self.audio_encoder(audio), self.positions)

    def _similarity(self, rows: torch.Tensor, columns: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        """``(batch, T, T)`` softmax over columns of the temperature-scaled cosine similarities."""
        scale = log_scale.clamp(max=math.log(self.config.max_logit_scale)).exp()
        cosine = F.normalize(rows, dim=-1) @ F.normalize(columns, dim=-1).transpose(1, 2)
        return (scale * cosine).softmax(dim=-1)

    def forward(self, action_units: torch.Tensor, mouth: torch.Tensor, audio: torch.Tensor) -> FauForensicsOutput:
        return self.classify(self.encode_audio(audio), self.encode_visual(action_units, mouth))

    def classify(self, audio: torch.Tensor, visual: torch.Tensor) -> FauForensicsOutput:
        """The similarity maps and heads from :meth:`encode_audio` and :meth:`encode_visual` outputs."""
        av = self._similarity(visual, audio, self.log_scale_av)
        aa = self._similarity(audio, audio, self.log_scale_aa)
        vv = self._similarity(visual, visual, self.log_scale_vv)
        return FauForensicsOutput(
            joint_logits=self.joint_head(av.flatten(1)),
            audio_logits=self.audio_head(aa.flatten(1)),
            visual_logits=self.visual_head(vv.flatten(1)),
            av_similarity=av, aa_similarity=aa, vv_similarity=vv,
        )


def model_config_for(audio_features: str, overrides: Mapping | None = None) -> dict:
    """:class:`FauForensicsModel` keyword arguments for a model that hears ``audio_features`` (its audio
    width ``n_mels`` and rate ``mel_per_frame`` follow from the kind), updated with ``overrides``."""
    channels, rows_per_frame = audio_shape(audio_features)
    return {"audio_features": audio_features, "n_mels": channels, "mel_per_frame": rows_per_frame,
            **dict(overrides or {})}


LOSS_WEIGHTS = (0.8, 0.1, 0.1)
"""Joint, audio and visual cross-entropy weights (the paper's)."""


def fau_loss(output: FauForensicsOutput, label: torch.Tensor, label_audio: torch.Tensor,
             label_visual: torch.Tensor, sync_weight: float = 0.0) -> torch.Tensor:
    """The paper's ``0.8 CE(joint, label) + 0.1 CE(audio, label_audio) + 0.1 CE(visual, label_visual)``.

    ``sync_weight`` adds a term of our own: on genuine windows, the negative log-probability that each
    visual frame matches its own audio frame in the audio-visual map. The paper's heads learn the
    frame alignment only through the classification loss; on a CPU budget that leaves a long,
    seed-dependent plateau, which this term removes. ``sync_weight=0`` is the paper's loss.

    Args:
        label, label_audio, label_visual: ``(batch,)`` int64 in {0, 1}.
    Returns:
        A scalar tensor.
    """
    joint, audio, visual = LOSS_WEIGHTS
    loss = (joint * F.cross_entropy(output.joint_logits, label)
            + audio * F.cross_entropy(output.audio_logits, label_audio)
            + visual * F.cross_entropy(output.visual_logits, label_visual))
    genuine = label == 0
    if sync_weight > 0 and genuine.any():
        own_frame = output.av_similarity[genuine].diagonal(dim1=1, dim2=2)
        loss = loss - sync_weight * torch.log(own_frame + 1e-6).mean()
    return loss
