"""fnn: a functional neural-network library on NumPy.

Parameters are frozen trees of read-only arrays; models, losses, gradients and
optimizers are pure functions over them; training is a fold. See the README.
"""

from . import callbacks as callbacks
from . import data as data
from . import experiments as experiments
from . import inference as inference
from . import io as io
from . import losses as losses
from . import metrics as metrics
from . import nn as nn
from . import optim as optim
from . import parallel as parallel
from . import plots as plots  # matplotlib itself is imported at the first plot
from . import random as random
from . import recipes as recipes
from . import runtime as runtime
from . import tree as tree
from .experiments import sweep as sweep
from .gradient import GradCheck as GradCheck
from .gradient import LossAndGrad as LossAndGrad
from .gradient import check_grad as check_grad
from .gradient import check_layer as check_layer
from .gradient import check_model as check_model
from .gradient import forward_backward as forward_backward
from .gradient import grad as grad
from .gradient import value_and_grad as value_and_grad
from .inference import Evaluation as Evaluation
from .inference import evaluate as evaluate
from .inference import generate as generate
from .inference import predict as predict
from .inference import predict_proba as predict_proba
from .io import load as load
from .io import save as save
from .train import Callback as Callback
from .train import EarlyStopping as EarlyStopping
from .train import EpochMetrics as EpochMetrics
from .train import Event as Event
from .train import Metrics as Metrics
from .train import NonFiniteLossError as NonFiniteLossError
from .train import TrainState as TrainState
from .train import augment_key as augment_key
from .train import fit as fit
from .train import fit_steps as fit_steps
from .train import step_key as step_key
from .train import train_epoch as train_epoch
from .train import train_state as train_state
from .train import train_step as train_step

__version__ = "0.1.0"

__all__ = [
    # the subpackages and modules re-exported here
    "callbacks",
    "data",
    "experiments",
    "inference",
    "io",
    "losses",
    "metrics",
    "nn",
    "optim",
    "parallel",
    "plots",
    "random",
    "recipes",
    "runtime",
    "tree",
    # gradients and their checks (fnn.gradient)
    "GradCheck",
    "LossAndGrad",
    "check_grad",
    "check_layer",
    "check_model",
    "forward_backward",
    "grad",
    "value_and_grad",
    # inference (fnn.inference)
    "Evaluation",
    "evaluate",
    "generate",
    "predict",
    "predict_proba",
    # files (fnn.io)
    "load",
    "save",
    # training (fnn.train)
    "Callback",
    "EarlyStopping",
    "EpochMetrics",
    "Event",
    "Metrics",
    "NonFiniteLossError",
    "TrainState",
    "augment_key",
    "fit",
    "fit_steps",
    "step_key",
    "train_epoch",
    "train_state",
    "train_step",
    # experiments (fnn.experiments)
    "sweep",
]
