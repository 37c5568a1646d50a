"""Layers as declarations and pure functions, combinators that compose them, the registry.

A layer is a :class:`Layer`: ``declare`` (its output shape, params and state as
:class:`Param` leaves, stated once), ``infer`` (called through ``apply``), the training
``forward`` and one hand-derived ``backward``; ``init``, ``init_state``, ``shapes`` and
every check of params, state and inputs follow from the declaration. :func:`combinator`
wires layers into a layer (:func:`serial`, :func:`residual`); ``mlp`` and ``cnn`` build
the classic networks. :func:`register` adds a layer constructor to the one registry that
specs and files name layers by; :func:`register_initializer` does the same for
initializers.
"""

from .._types import Array as Array
from .._types import Shape as Shape
from . import _legacy  # noqa: F401  (older files' record names)
from ._activations import elu as elu
from ._activations import flatten as flatten
from ._activations import gelu as gelu
from ._activations import identity as identity
from ._activations import leaky_relu as leaky_relu
from ._activations import log_softmax as log_softmax
from ._activations import parameterless as parameterless
from ._activations import relu as relu
from ._activations import sigmoid as sigmoid
from ._activations import silu as silu
from ._activations import softmax as softmax
from ._activations import tanh as tanh
from ._attention import AnyAttentionParams as AnyAttentionParams
from ._attention import AttentionCache as AttentionCache
from ._attention import AttentionParams as AttentionParams
from ._attention import AttentionParamsNoBias as AttentionParamsNoBias
from ._attention import attend_step as attend_step
from ._attention import attention as attention
from ._cnn import CNNParams as CNNParams
from ._cnn import CNNState as CNNState
from ._cnn import cnn as cnn
from ._combinator import Back as Back
from ._combinator import combinator as combinator
from ._conv import Conv2DParams as Conv2DParams
from ._conv import conv2d as conv2d
from ._dense import DenseParams as DenseParams
from ._dense import WeightParams as WeightParams
from ._dense import dense as dense
from ._embedding import EmbeddingParams as EmbeddingParams
from ._embedding import PositionalParams as PositionalParams
from ._embedding import embedding as embedding
from ._embedding import masked as masked
from ._embedding import positional_embedding as positional_embedding
from ._embedding import sinusoidal_embedding as sinusoidal_embedding
from ._embedding import tied as tied
from ._init import INITIALIZERS as INITIALIZERS
from ._init import Initializer as Initializer
from ._init import constant as constant
from ._init import glorot_normal as glorot_normal
from ._init import glorot_uniform as glorot_uniform
from ._init import he_normal as he_normal
from ._init import he_uniform as he_uniform
from ._init import initializer as initializer
from ._init import lecun_normal as lecun_normal
from ._init import normal as normal
from ._init import ones as ones
from ._init import register_initializer as register_initializer
from ._init import zeros as zeros
from ._layer import BackwardFn as BackwardFn
from ._layer import Declared as Declared
from ._layer import DeclareFn as DeclareFn
from ._layer import Decoder as Decoder
from ._layer import ForwardFn as ForwardFn
from ._layer import InferFn as InferFn
from ._layer import Layer as Layer
from ._layer import Param as Param
from ._layer import check_ids as check_ids
from ._layer import decoder_of as decoder_of
from ._layer import param as param
from ._layer import params_dtype as params_dtype
from ._layer import placeholder as placeholder
from ._layer import readonly as readonly
from ._mlp import MLPParams as MLPParams
from ._mlp import mlp as mlp
from ._norm import BatchNormParams as BatchNormParams
from ._norm import BatchNormState as BatchNormState
from ._norm import LayerNormParams as LayerNormParams
from ._norm import ScaleParams as ScaleParams
from ._norm import batch_norm as batch_norm
from ._norm import layer_norm as layer_norm
from ._norm import rms_norm as rms_norm
from ._pool import avg_pool as avg_pool
from ._pool import dropout as dropout
from ._pool import max_pool as max_pool
from ._recurrent import GRUParams as GRUParams
from ._recurrent import LSTMParams as LSTMParams
from ._recurrent import gru as gru
from ._recurrent import lstm as lstm
from ._recurrent import pytorch_recurrent as pytorch_recurrent
from ._registry import LAYERS as LAYERS
from ._registry import Registered as Registered
from ._registry import activation as activation
from ._registry import from_spec as from_spec
from ._registry import register as register
from ._residual import residual as residual
from ._serial import serial as serial
from ._shape_layers import global_avg_pool as global_avg_pool
from ._shape_layers import reshape as reshape
from ._transformer import BlockParams as BlockParams
from ._transformer import GPTBody as GPTBody
from ._transformer import GPTParams as GPTParams
from ._transformer import TiedGPTParams as TiedGPTParams
from ._transformer import gpt as gpt
from ._transformer import transformer_block as transformer_block

xavier_normal = glorot_normal
xavier_uniform = glorot_uniform

__all__ = [
    "INITIALIZERS", "LAYERS", "AnyAttentionParams", "Array", "AttentionCache",
    "AttentionParams", "AttentionParamsNoBias", "Back", "BackwardFn", "BatchNormParams",
    "BlockParams", "CNNParams", "CNNState", "GPTBody", "GPTParams", "MLPParams", "TiedGPTParams",
    "BatchNormState", "Conv2DParams", "DeclareFn", "Declared", "Decoder", "DenseParams",
    "EmbeddingParams", "ForwardFn", "GRUParams", "InferFn", "Initializer", "LSTMParams",
    "Layer", "LayerNormParams", "Param", "PositionalParams", "Registered", "ScaleParams",
    "Shape", "WeightParams", "activation", "attend_step", "attention", "avg_pool", "batch_norm",
    "check_ids", "cnn", "combinator", "constant", "conv2d", "decoder_of", "dense", "dropout",
    "elu", "embedding", "flatten", "from_spec", "gelu", "global_avg_pool", "glorot_normal",
    "glorot_uniform", "gpt", "gru", "he_normal", "he_uniform", "identity", "initializer",
    "layer_norm", "leaky_relu", "lecun_normal", "log_softmax", "lstm", "masked", "max_pool",
    "mlp", "normal", "ones", "param", "parameterless", "params_dtype", "placeholder",
    "positional_embedding", "pytorch_recurrent", "readonly", "register", "register_initializer",
    "relu", "reshape", "residual", "rms_norm", "serial", "sigmoid", "silu",
    "sinusoidal_embedding", "softmax", "tanh", "tied", "transformer_block", "xavier_normal",
    "xavier_uniform", "zeros",
]  # fmt: skip
