from lightning_tsdfm.models.backbone import DiffusionTransformer, TransformerConfig

__all__ = ["DiffusionTransformer", "TransformerConfig"]
