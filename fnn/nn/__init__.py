"""Layers as records of pure functions, combinators that compose them, and the registry.

A layer is a :class:`Layer`: ``init``, ``shapes``, ``infer`` (called through ``apply``),
the training ``forward`` and one hand-derived ``backward``; stateful layers add
``init_state`` and stochastic ones set ``stochastic``. ``serial`` composes layers; ``mlp``
builds the classic multilayer perceptron. :func:`register` adds a layer constructor to
the one registry that specs and files name layers by.
"""

from .._types import Array as Array
from .._types import Shape as Shape
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
from ._cnn import cnn as cnn
from ._conv import Conv2DParams as Conv2DParams
from ._conv import conv2d as conv2d
from ._dense import DenseParams as DenseParams
from ._dense import dense as dense
from ._init import INITIALIZERS as INITIALIZERS
from ._init import Initializer as Initializer
from ._init import glorot_normal as glorot_normal
from ._init import glorot_uniform as glorot_uniform
from ._init import he_normal as he_normal
from ._init import he_uniform as he_uniform
from ._init import initializer as initializer
from ._init import lecun_normal as lecun_normal
from ._init import zeros as zeros
from ._layer import BackwardFn as BackwardFn
from ._layer import ForwardFn as ForwardFn
from ._layer import InferFn as InferFn
from ._layer import InitFn as InitFn
from ._layer import InitStateFn as InitStateFn
from ._layer import Layer as Layer
from ._layer import Shapes as Shapes
from ._layer import ShapesFn as ShapesFn
from ._layer import check_in_shape as check_in_shape
from ._layer import check_input as check_input
from ._layer import check_no_state as check_no_state
from ._layer import param_dtype as param_dtype
from ._layer import placeholder as placeholder
from ._layer import readonly as readonly
from ._mlp import mlp as mlp
from ._norm import BatchNormParams as BatchNormParams
from ._norm import BatchNormState as BatchNormState
from ._norm import LayerNormParams as LayerNormParams
from ._norm import batch_norm as batch_norm
from ._norm import layer_norm as layer_norm
from ._pool import avg_pool as avg_pool
from ._pool import dropout as dropout
from ._pool import max_pool as max_pool
from ._registry import LAYERS as LAYERS
from ._registry import Registered as Registered
from ._registry import activation as activation
from ._registry import from_spec as from_spec
from ._registry import register as register
from ._residual import residual as residual
from ._serial import serial as serial
from ._shape_layers import global_avg_pool as global_avg_pool
from ._shape_layers import reshape as reshape

xavier_normal = glorot_normal
xavier_uniform = glorot_uniform
