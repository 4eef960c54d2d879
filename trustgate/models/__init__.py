"""Model checkpoints and how they load: handles with their weights fingerprint, the embedded
base model, hub downloads (safetensors only), devices and dtypes. The one part of trustgate
besides `util` that `compressors/` imports."""

from trustgate.models.blocks import block_index, blocks_pattern, decoder_blocks
from trustgate.models.checkpoints import (
    EMBEDDED_BASE_MODEL,
    ModelHandle,
    check_base_model_name,
    check_checkpoint_name,
    download_from_hub,
    embedded_base_model,
    embedded_gguf_path,
    resolve_base_model,
    weights_fingerprint,
)
from trustgate.models.loading import (
    check_device,
    evaluation_dtype,
    load_model,
    load_tokenizer,
    select_device,
    worker_gpu,
)

__all__ = [
    "EMBEDDED_BASE_MODEL",
    "ModelHandle",
    "block_index",
    "blocks_pattern",
    "check_base_model_name",
    "check_checkpoint_name",
    "check_device",
    "decoder_blocks",
    "download_from_hub",
    "embedded_base_model",
    "embedded_gguf_path",
    "evaluation_dtype",
    "load_model",
    "load_tokenizer",
    "resolve_base_model",
    "select_device",
    "weights_fingerprint",
    "worker_gpu",
]
