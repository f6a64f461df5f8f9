"""Tiny, random-weight, *real* diffusers text-to-video pipelines, built fully offline.

Every pipeline is assembled from its real diffusers / transformers classes with tiny configs written
in code, random weights drawn under ``torch.manual_seed(seed)``, and word-level tokenizers built with
the ``tokenizers`` library (no hub access at all).  ``build_tiny_pipeline`` saves the pipeline with
``save_pretrained`` so that ``diffusers.DiffusionPipeline.from_pretrained(folder)`` loads it back,
which is the same code path a user's hub id takes after download.

Families:

* ``cogvideox``    -- ``CogVideoXPipeline``      (T5 encoder, CogVideoX transformer, CogVideoX DDIM)
* ``wan``          -- ``WanPipeline``            (UMT5 encoder, Wan transformer, UniPC flow sampler)
* ``hunyuanvideo`` -- ``HunyuanVideoPipeline``   (Llama + CLIP encoders, Hunyuan transformer, flow Euler)
* ``zeroscope``    -- ``TextToVideoSDPipeline``  (CLIP encoder, UNet3D, DDIM)

``TINY_CALL_SETTINGS[family]`` holds call kwargs that make a fast valid call (2 steps, a few frames,
16x16 or 32x32 pixels, well under 2 s on a CPU).
"""

from __future__ import annotations

import pathlib
import string

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

__all__ = [
    "FAMILIES",
    "TINY_CALL_SETTINGS",
    "TINY_VOCAB",
    "HUNYUAN_TINY_PROMPT_TEMPLATE",
    "build_tiny_pipeline",
    "build_word_tokenizer",
]

FAMILIES = ("cogvideox", "wan", "hunyuanvideo", "zeroscope")

# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------

_WORDS = """
a an the this that these those some any all no not every each other another same such only own
and or but if then than so as of in on at to from by with without into onto over under above below
behind near far between through across around along against toward towards up down out off away
back left right front middle top bottom side inside outside together alone
is are was were be been being am has have had do does did can could will would should may might must
it its he she they them his her their we us our you your i me my who what which where when why how
one two three four five six seven eight nine ten many few several more most less much very too also
just still again always never often slowly quickly fast slow
man woman boy girl child children baby person people men women kid kids family friend friends crowd
face head hair eye eyes hand hands arm arms leg legs foot feet body skin smile
dog dogs cat cats bird birds horse horses cow fish lion tiger bear elephant monkey rabbit fox wolf deer
duck chicken sheep pig mouse snake frog butterfly bee insect animal animals dolphin whale shark
car cars truck bus bike bicycle motorcycle train plane airplane boat ship rocket helicopter vehicle
road street bridge city town village house houses home building buildings church tower castle
school hospital shop store restaurant kitchen room window door wall floor roof garden park farm
tree trees flower flowers grass leaf leaves forest wood woods field mountain mountains hill hills
river lake sea ocean beach sand desert island rock rocks stone cave valley
sky cloud clouds sun moon star stars rain snow snowy wind storm fog light dark shadow night day
morning evening sunset sunrise winter summer spring autumn fall weather fire water ice smoke
red orange yellow green blue purple pink brown black white gray grey gold golden silver colorful
color colors bright
big small large tiny little huge tall short long wide round square flat thin thick old new young
beautiful pretty ugly happy sad angry calm quiet loud clean dirty empty full hot cold warm cool wet dry
soft hard heavy heavy sharp smooth rough shiny
circle circles square squares triangle triangles shape shapes ball balls box boxes line lines dot dots
cube sphere ring
moving moves move running runs run walking walks walk jumping jumps jump flying flies fly swimming
swims swim dancing dances dance playing plays play eating eats eat drinking drinks drink sitting sits
sit standing stands stand sleeping sleeps sleep reading reads read writing writes write singing sings
sing talking talks talk looking looks look watching watches watch holding holds hold riding rides
ride driving drives drive falling falls fall rolling rolls roll spinning spins spin turning turns turn
rising rises rise bouncing bounces bounce growing grows grow burning burns burn floating floats float
waving waves wave shaking smiling laughing crying fighting falling
photo photograph picture image video film movie scene shot view camera closeup close cinematic
realistic painting drawing cartoon anime sketch style art artwork portrait landscape
quality high low detailed blurry blurred sharp
van gogh picasso monet rembrandt vermeer dali kahlo warhol da vinci
snoopy mickey spiderman batman superman pikachu elsa mario
nudity nude naked nsfw sexual sex explicit violence violent blood bloody gore gun guns weapon weapons
knife war dead death kill killing hate drugs
parachute garbage golf chainsaw tench english springer cassette player gas pump
system user describe describing
""".split()

_PUNCT = list(".,!?;:'\"-()/&")
_DIGITS = list(string.digits)

#: The word list shared by all tiny tokenizers (order fixed; special tokens are added per kind).
TINY_VOCAB: list[str] = list(dict.fromkeys(_WORDS + _PUNCT + _DIGITS))

# --------------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------------

# Special tokens, in id order, per tokenizer kind. Ids are chosen so that:
#  * t5:    <pad>=0, </s>=1, <unk>=2 as in T5 (pad == decoder_start_token_id == 0); "$A </s>" appended.
#  * clip:  <|startoftext|>=0, <|endoftext|>=1 (also the pad token, like openai/clip-vit-large-patch14),
#           <unk>=2.  eos id != 2 so CLIPTextModel pools at the first eos (not the legacy argmax path).
#  * llama: llama-3 style bos/eos plus header tokens so HunyuanVideo-style templates tokenize;
#           bos is prepended, no eos appended, a dedicated <pad> pads on the right.
_KINDS = {
    "t5": dict(
        specials=["<pad>", "</s>", "<unk>"],
        unk="<unk>", pad="<pad>", bos=None, eos="</s>",
        single="$A </s>", pair="$A </s> $B </s>", model_max_length=512,
    ),
    "clip": dict(
        specials=["<|startoftext|>", "<|endoftext|>", "<unk>"],
        unk="<unk>", pad="<|endoftext|>", bos="<|startoftext|>", eos="<|endoftext|>",
        single="<|startoftext|> $A <|endoftext|>", pair="<|startoftext|> $A <|endoftext|> $B <|endoftext|>",
        model_max_length=77,
    ),
    "llama": dict(
        specials=["<unk>", "<|begin_of_text|>", "<|end_of_text|>", "<pad>",
                  "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        unk="<unk>", pad="<pad>", bos="<|begin_of_text|>", eos="<|end_of_text|>",
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B", model_max_length=1024,
    ),
}


def build_word_tokenizer(vocab: list[str], kind: str) -> PreTrainedTokenizerFast:
    """Word-level tokenizer (``tokenizers`` WordLevel model) wrapped as a ``PreTrainedTokenizerFast``.

    Text is NFD-normalised, accent-stripped and lower-cased, split on whitespace, punctuation
    (each mark its own token) and digits (one token per digit); words outside ``vocab`` map to
    ``<unk>``, so every English prompt tokenizes.  ``kind`` ("t5", "clip" or "llama") picks the special
    tokens, their ids, the post-processing template (eos / bos) and the model max length of that
    tokenizer family (see ``_KINDS``).  Padding is on the right.  The result saves with
    ``save_pretrained`` (``tokenizer.json`` + ``tokenizer_config.json``) and reloads with
    ``PreTrainedTokenizerFast.from_pretrained`` / ``AutoTokenizer.from_pretrained``.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; expected one of {sorted(_KINDS)}")
    spec = _KINDS[kind]
    specials = spec["specials"]
    tokens = list(specials) + [w for w in dict.fromkeys(w.lower() for w in vocab) if w not in specials]
    token_to_id = {t: i for i, t in enumerate(tokens)}

    tok = Tokenizer(models.WordLevel(vocab=token_to_id, unk_token=spec["unk"]))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Punctuation(behavior="isolated"),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    used = {t for t in spec["single"].split() + spec["pair"].split() if not t.startswith("$")}
    tok.post_processor = processors.TemplateProcessing(
        single=spec["single"], pair=spec["pair"], special_tokens=[(t, token_to_id[t]) for t in sorted(used)]
    )
    # WordLevel has no decoder of its own; the WordPiece decoder joins tokens with spaces and tidies
    # the spaces before punctuation (``cleanup``), which is what a word-level vocab needs.
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)

    kwargs = dict(
        tokenizer_object=tok,
        unk_token=spec["unk"],
        pad_token=spec["pad"],
        eos_token=spec["eos"],
        model_max_length=spec["model_max_length"],
        padding_side="right",
        truncation_side="right",
    )
    if spec["bos"] is not None:
        kwargs["bos_token"] = spec["bos"]
    extra = [t for t in specials if t not in {spec["unk"], spec["pad"], spec["eos"], spec["bos"]}]
    if extra:
        kwargs["additional_special_tokens"] = extra
    return PreTrainedTokenizerFast(**kwargs)


# --------------------------------------------------------------------------------------------------
# Call settings
# --------------------------------------------------------------------------------------------------

#: A small HunyuanVideo-style llama prompt template. The real pipeline default has a ~95-token system
#: prompt with ``crop_start=95`` counted by the real Llama-3 tokenizer; this keeps the same shape
#: (system header, user header, prompt, eot) at a size the tiny vocab tokenizes exactly.
#: ``crop_start`` = tokens before the prompt: bos + 11 template tokens = 12.
HUNYUAN_TINY_PROMPT_TEMPLATE = {
    "template": (
        "<|start_header_id|>system<|end_header_id|> describe the video . <|eot_id|>"
        "<|start_header_id|>user<|end_header_id|> {}<|eot_id|>"
    ),
    "crop_start": 12,
}

#: Per family: kwargs for a fast, valid call (pass together with prompt / generator / output_type).
#: ``max_sequence_length`` for cogvideox must equal the transformer's ``max_text_seq_length`` (16).
TINY_CALL_SETTINGS: dict[str, dict] = {
    "cogvideox": {
        "num_frames": 9,
        "height": 16,
        "width": 16,
        "num_inference_steps": 2,
        "guidance_scale": 6.0,
        "max_sequence_length": 16,
    },
    "wan": {
        "num_frames": 9,
        "height": 16,
        "width": 16,
        "num_inference_steps": 2,
        "guidance_scale": 5.0,
        "max_sequence_length": 16,
    },
    "hunyuanvideo": {
        "num_frames": 9,
        "height": 16,
        "width": 16,
        "num_inference_steps": 2,
        "guidance_scale": 6.0,  # embedded (distilled) guidance; real CFG needs true_cfg_scale > 1
        "max_sequence_length": 16,
        "prompt_template": HUNYUAN_TINY_PROMPT_TEMPLATE,
    },
    "zeroscope": {
        "num_frames": 8,
        "height": 32,
        "width": 32,
        "num_inference_steps": 2,
        "guidance_scale": 9.0,
    },
}

# --------------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------------


def _t5_config(vocab_size: int, d_model: int, umt5: bool = False):
    from transformers import T5Config, UMT5Config

    cls = UMT5Config if umt5 else T5Config
    return cls(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",  # T5 v1.1 / UMT5 style
        is_encoder_decoder=True,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )


def _clip_text_model(tokenizer: PreTrainedTokenizerFast, hidden_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        projection_dim=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
        attention_dropout=0.0,
        dropout=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def _build_cogvideox(seed: int):
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )
    from transformers import T5EncoderModel

    tokenizer = build_word_tokenizer(TINY_VOCAB, "t5")
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(_t5_config(len(tokenizer), d_model=32))

    torch.manual_seed(seed)
    # 4 blocks: spatial factor 2**3 = 8, temporal 4 (needs >= 3 blocks). 16 px -> 2x2 latent.
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
        sample_height=16,
        sample_width=16,
    )

    torch.manual_seed(seed)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,  # inner dim 32 (sincos 3D pos-embed needs a multiple of 16)
        in_channels=4,
        out_channels=4,
        time_embed_dim=8,
        text_embed_dim=32,  # == T5 d_model
        num_layers=2,
        sample_width=2,  # latent units: 16 px / 8
        sample_height=2,
        sample_frames=9,  # pixel frames: (9 - 1) / 4 + 1 = 3 latent frames
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,  # == call max_sequence_length
        spatial_interpolation_scale=1.0,
        temporal_interpolation_scale=1.0,
        use_rotary_positional_embeddings=False,  # CogVideoX-2b style sincos embeddings
    )

    # CogVideoX-2b scheduler config.
    scheduler = CogVideoXDDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=True,
        steps_offset=0,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        snr_shift_scale=3.0,
        timestep_spacing="trailing",
    )
    return CogVideoXPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )


def _build_wan(seed: int):
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5EncoderModel

    tokenizer = build_word_tokenizer(TINY_VOCAB, "t5")
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(_t5_config(len(tokenizer), d_model=32, umt5=True))

    torch.manual_seed(seed)
    # dim_mult of length 4 -> spatial factor 8; temperal_downsample [F, T, T] -> temporal factor 4.
    vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=16,  # keeps the stock 16-entry latents_mean / latents_std
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )

    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,  # rope splits head_dim into t/h/w = 4/4/4
        in_channels=16,
        out_channels=16,
        text_dim=32,  # == UMT5 d_model
        freq_dim=32,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )

    # The scheduler Wan 2.1 ships (flow-matching UniPC, shift 3.0 for 480p).
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=3.0
    )
    return WanPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )


def _build_hunyuanvideo(seed: int):
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
        HunyuanVideoTransformer3DModel,
    )
    from transformers import LlamaConfig, LlamaModel

    tokenizer = build_word_tokenizer(TINY_VOCAB, "llama")
    tokenizer_2 = build_word_tokenizer(TINY_VOCAB, "clip")

    torch.manual_seed(seed)
    text_encoder = LlamaModel(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=3,  # the pipeline reads hidden_states[-3]
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            rms_norm_eps=1e-5,
            hidden_act="silu",
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    torch.manual_seed(seed)
    text_encoder_2 = _clip_text_model(tokenizer_2, hidden_size=8)

    torch.manual_seed(seed)
    transformer = HunyuanVideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=10,
        num_layers=1,
        num_single_layers=1,
        num_refiner_layers=1,
        patch_size=1,
        patch_size_t=1,
        guidance_embeds=True,
        text_embed_dim=16,  # == llama hidden_size
        pooled_projection_dim=8,  # == CLIP hidden_size (pooler_output)
        rope_axes_dim=(2, 4, 4),  # sums to attention_head_dim
    )

    torch.manual_seed(seed)
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        act_fn="silu",
        norm_num_groups=4,
        scaling_factor=0.476986,
        spatial_compression_ratio=8,
        temporal_compression_ratio=4,
        mid_block_add_attention=True,
    )

    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)
    return HunyuanVideoPipeline(
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
    )


def _build_zeroscope(seed: int):
    from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel

    tokenizer = build_word_tokenizer(TINY_VOCAB, "clip")
    torch.manual_seed(seed)
    text_encoder = _clip_text_model(tokenizer, hidden_size=16)

    torch.manual_seed(seed)
    unet = UNet3DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        cross_attention_dim=16,  # == CLIP hidden_size
        attention_head_dim=4,
        norm_num_groups=4,
    )

    torch.manual_seed(seed)
    # 3 blocks -> spatial factor 4: 32 px -> 8x8 latent.
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(8, 8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
        scaling_factor=0.18215,
    )

    # zeroscope_v2 / text-to-video-ms-1.7b scheduler config.
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
    )
    return TextToVideoSDPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler
    )


_BUILDERS = {
    "cogvideox": _build_cogvideox,
    "wan": _build_wan,
    "hunyuanvideo": _build_hunyuanvideo,
    "zeroscope": _build_zeroscope,
}


def build_tiny_pipeline(family: str, out_dir: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """Build the tiny pipeline of `family` with torch.manual_seed(seed) weights, save_pretrained it into out_dir, return out_dir."""
    if family not in _BUILDERS:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Building must not disturb the caller's global RNG stream.
    with torch.random.fork_rng(devices=[]):
        pipe = _BUILDERS[family](seed)
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):
            assert all(p.dtype == torch.float32 for p in component.parameters()), f"{name} is not float32"
    pipe.save_pretrained(out_dir)
    return out_dir
