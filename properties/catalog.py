"""Every declared property, in report order (one module per family)."""
from properties import (props_batch_norm, props_batch_norm_module, props_conv_module,
                        props_cuda, props_functional_conv, props_pooling, props_raising,
                        props_textbook_conv)
from properties.registry import properties_of

ALL_PROPERTIES = properties_of(props_textbook_conv, props_conv_module, props_functional_conv,
                               props_pooling, props_raising, props_batch_norm,
                               props_batch_norm_module,
                               props_cuda)
