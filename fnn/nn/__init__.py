"""Layers as records of pure functions, and combinators that compose them.

A layer is a :class:`Layer`: ``init``, ``output_shape``, ``apply``, ``forward`` and a
hand-derived ``backward``. ``serial`` composes layers; ``mlp`` builds the classic
multilayer perceptron.
"""

from ._activations import activation as activation
from ._activations import flatten as flatten
from ._activations import identity as identity
from ._activations import leaky_relu as leaky_relu
from ._activations import log_softmax as log_softmax
from ._activations import relu as relu
from ._activations import sigmoid as sigmoid
from ._activations import softmax as softmax
from ._activations import tanh as tanh
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
from ._layer import Backward as Backward
from ._layer import Forward as Forward
from ._layer import InitFn as InitFn
from ._layer import Layer as Layer
from ._layer import readonly as readonly
from ._mlp import mlp as mlp
from ._serial import serial as serial
from ._spec import from_spec as from_spec

xavier_normal = glorot_normal
xavier_uniform = glorot_uniform
