"""Optimizers as pure transitions ``update(state, grads) -> (state, params)``.

An :class:`Optimizer` is a chain of gradient transforms (:func:`chain`); the named
rules (:func:`sgd`, :func:`adagrad`, :func:`rmsprop`, :func:`adam`, :func:`adamw`)
are short chains. Learning rates are floats or schedules (pure functions of the step).

>>> import fnn, numpy as np
>>> params = {"w": np.ones(3, np.float32)}
>>> opt = fnn.optim.adam(1e-3)
>>> state = opt.init(params)
>>> state, params = opt.update(state, {"w": np.ones(3, np.float32)})
>>> params["w"].dtype, state.step
(dtype('float32'), 1)
"""

from ._alias import OPTIMIZERS as OPTIMIZERS
from ._alias import RMSpropMoments as RMSpropMoments
from ._alias import SGDMoments as SGDMoments
from ._alias import adagrad as adagrad
from ._alias import adam as adam
from ._alias import adamw as adamw
from ._alias import momentum as momentum
from ._alias import nesterov as nesterov
from ._alias import optimizer as optimizer
from ._alias import optimizer_options as optimizer_options
from ._alias import register as register
from ._alias import rmsprop as rmsprop
from ._alias import sgd as sgd
from ._base import EmptyState as EmptyState
from ._base import Optimizer as Optimizer
from ._base import OptState as OptState
from ._base import Transform as Transform
from ._base import Updates as Updates
from ._base import chain as chain
from ._base import moment_trees as moment_trees
from ._base import params as params
from ._base import stateless as stateless
from ._schedules import Schedule as Schedule
from ._schedules import as_schedule as as_schedule
from ._schedules import constant as constant
from ._schedules import cosine_decay as cosine_decay
from ._schedules import exponential_decay as exponential_decay
from ._schedules import inverse_time_decay as inverse_time_decay
from ._schedules import linear_warmup as linear_warmup
from ._schedules import piecewise_constant as piecewise_constant
from ._schedules import step_decay as step_decay
from ._schedules import warmup_cosine as warmup_cosine
from ._transforms import AdagradState as AdagradState
from ._transforms import AdamState as AdamState
from ._transforms import RmsState as RmsState
from ._transforms import TraceState as TraceState
from ._transforms import add_decayed_weights as add_decayed_weights
from ._transforms import add_l2 as add_l2
from ._transforms import clip as clip
from ._transforms import clip_by_global_norm as clip_by_global_norm
from ._transforms import freeze as freeze
from ._transforms import scale_by_adagrad as scale_by_adagrad
from ._transforms import scale_by_adam as scale_by_adam
from ._transforms import scale_by_learning_rate as scale_by_learning_rate
from ._transforms import scale_by_rms as scale_by_rms
from ._transforms import trace as trace

__all__ = [
    # the named optimizers and their registry
    "OPTIMIZERS",
    "RMSpropMoments",
    "SGDMoments",
    "adagrad",
    "adam",
    "adamw",
    "momentum",
    "nesterov",
    "optimizer",
    "optimizer_options",
    "register",
    "rmsprop",
    "sgd",
    # gradient transforms and their states
    "AdagradState",
    "AdamState",
    "RmsState",
    "TraceState",
    "add_decayed_weights",
    "add_l2",
    "clip",
    "clip_by_global_norm",
    "freeze",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "trace",
    # learning-rate schedules
    "Schedule",
    "as_schedule",
    "constant",
    "cosine_decay",
    "exponential_decay",
    "inverse_time_decay",
    "linear_warmup",
    "piecewise_constant",
    "step_decay",
    "warmup_cosine",
    # the optimizer and transform records, the state, chain
    "EmptyState",
    "Optimizer",
    "OptState",
    "Transform",
    "Updates",
    "chain",
    "moment_trees",
    "params",
    "stateless",
]
