"""fnn: a functional neural-network library on NumPy.

Parameters are frozen trees of read-only arrays; models, losses, gradients and
optimizers are pure functions over them; training is a fold. See the README.
"""

from . import losses as losses
from . import nn as nn
from . import optim as optim
from . import random as random
from . import tree as tree
from .gradient import GradCheck as GradCheck
from .gradient import check_grad as check_grad
from .gradient import check_layer as check_layer
from .gradient import check_model as check_model
from .gradient import grad as grad
from .gradient import value_and_grad as value_and_grad

__version__ = "0.1.0"
