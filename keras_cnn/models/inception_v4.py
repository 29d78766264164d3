"""Inception-v4, Inception-ResNet-v1 and Inception-ResNet-v2.

Szegedy, Ioffe, Vanhoucke, Alemi, "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning", AAAI 2017, https://arxiv.org/abs/1602.07261 (seed 001).

- ``inception_v4``: Figures 3-9 (Cadene/timm ``inceptionv4``, whose ImageNet weights people use).
- ``inception_resnet_v2``: Figures 3, 16-18 (Cadene/timm ``inception_resnet_v2``); residual
  branches are scaled by 0.17 / 0.10 / 0.20 (section 3.3) before the add.
- ``inception_resnet_v1``: Figures 10-14 with Reduction-A of k, l, m, n = 192, 192, 256, 384
  (Table 1). No implementation publishes a count, so :data:`INCEPTION_RESNET_V1_PARAMS` is
  derived from the figures: every conv is conv (no bias) + BN (gamma and beta), except each
  residual branch's linear 1x1 "up" conv, which has a bias and no BN (as in the v2 reference);
  ``tests/test_classic.py`` recomputes it from a table of the figures' layers.

All convs are conv-BN(eps 1e-3)-ReLU; stride-2 convs and pools are unpadded ("V" in the figures).

Trained weights: timm's ``inception_v4.tf_in1k`` and ``inception_resnet_v2.tf_in1k`` (Google's
TF-slim weights as Cadene ported them) load through :data:`TIMM_V4_KEYS` and
:data:`TIMM_IRV2_KEYS`; our nets are timm's layer for layer (every max-pool is unpadded, so the
pool padding value never matters here).

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("inception_resnet_v2", num_classes=10).output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import check_range, classifier_head, max_pool, symmetric_conv
from keras_cnn.models.inception import RECIPE, inception_module, make_conv
from keras_cnn.models.spec import DROPOUT, FeatureLevels, KeyMap, Variant, register_model, timm_checkpoint

PAPER = dict(paper="Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
             url="https://arxiv.org/abs/1602.07261", year=2017, input_shape=(299, 299, 3), min_input_size=75)

V = "valid"
MAX2 = ("max", 3, 2, 0)

# ------------------------------------------------------------------ Inception-v4 (Figures 3-9)
V4_STEM = (
    ("stem_mixed3a", ([MAX2], [(96, 3, 2, V)])),
    ("stem_mixed4a", ([(64, 1), (96, 3, 1, V)], [(64, 1), (64, (1, 7)), (64, (7, 1)), (96, 3, 1, V)])),
    ("stem_mixed5a", ([(192, 3, 2, V)], [MAX2])),
)
V4_A = ([(96, 1)], [(64, 1), (96, 3)], [(64, 1), (96, 3), (96, 3)], [("avg_same", 3), (96, 1)])
V4_REDUCTION_A = ([(384, 3, 2, V)], [(192, 1), (224, 3), (256, 3, 2, V)], [MAX2])
V4_B = ([(384, 1)], [(192, 1), (224, (1, 7)), (256, (7, 1))],
        [(192, 1), (192, (7, 1)), (224, (1, 7)), (224, (7, 1)), (256, (1, 7))], [("avg_same", 3), (128, 1)])
V4_REDUCTION_B = ([(192, 1), (192, 3, 2, V)], [(256, 1), (256, (1, 7)), (320, (7, 1)), (320, 3, 2, V)], [MAX2])
V4_C = ([(256, 1)], [(384, 1), ("fork", (256, (1, 3)), (256, (3, 1)))],
        [(384, 1), (448, (3, 1)), (512, (1, 3)), ("fork", (256, (1, 3)), (256, (3, 1)))],
        [("avg_same", 3), (256, 1)])


#: timm's checkpoints (``timm.models.get_pretrained_cfg``): TF-slim's Inception normalization, 299 input.
INCEPTION_MEAN_STD = dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
V4_CHECKPOINTS = (
    timm_checkpoint("inception_v4.tf_in1k", **INCEPTION_MEAN_STD, crop_size=299, crop_pct=0.875,
                    interpolation="bicubic"),
)
IRV2_CHECKPOINTS = (
    timm_checkpoint("inception_resnet_v2.tf_in1k", **INCEPTION_MEAN_STD, crop_size=299, crop_pct=0.8975,
                    interpolation="bicubic"),
    timm_checkpoint("inception_resnet_v2.tf_ens_adv_in1k", **INCEPTION_MEAN_STD, crop_size=299, crop_pct=0.8975,
                    interpolation="bicubic"),
)


def _module_keys(name, index, branch_rules):
    """Rules sending our module ``name``'s layers to timm's ``features.{index}``."""
    return tuple((f"{name}_{pattern}", f"features.{index}.{template}") for pattern, template in branch_rules)


#: Our branch ``b{n}_{i}`` -> timm's ``branch{n-1}`` (``.{i-1}`` where the branch is a Sequential).
_V4_A_B_KEYS = ((r"b1_1_(conv|bn)", "branch0.{1}"), (r"b([23])_(\d)_(conv|bn)", "branch{1-1}.{2-1}.{3}"),
                (r"b4_2_(conv|bn)", "branch3.1.{1}"))
_V4_C_KEYS = ((r"b1_1_(conv|bn)", "branch0.{1}"), (r"b2_1_(conv|bn)", "branch1_0.{1}"),
              (r"b2_2_([ab])_(conv|bn)", "branch1_1{1}.{2}"), (r"b3_([123])_(conv|bn)", "branch2_{1-1}.{2}"),
              (r"b3_4_([ab])_(conv|bn)", "branch2_3{1}.{2}"), (r"b4_2_(conv|bn)", "branch3.1.{1}"))
#: timm's inception_v4 state_dict (``timm.models.inception_v4``: one ``features`` Sequential) onto our
#: layer names: stem convs 0-2, Mixed3a/4a/5a 3-5, Inception-A 6-9, Reduction-A 10, Inception-B
#: 11-17, Reduction-B 18, Inception-C 19-21.
TIMM_V4_KEYS = KeyMap(
    rules=(
        (r"stem_conv([123])_(conv|bn)", "features.{1-1}.{2}"),
        *_module_keys("stem_mixed3a", 3, [(r"b2_1_(conv|bn)", "conv.{1}")]),
        *_module_keys("stem_mixed4a", 4, [(r"b(\d)_(\d)_(conv|bn)", "branch{1-1}.{2-1}.{3}")]),
        *_module_keys("stem_mixed5a", 5, [(r"b1_1_(conv|bn)", "conv.{1}")]),
        *(rule for i in range(4) for rule in _module_keys(f"inception_a{i + 1}", 6 + i, _V4_A_B_KEYS)),
        *_module_keys("inception_reduction_a", 10, [(r"b1_1_(conv|bn)", "branch0.{1}"),
                                                    (r"b2_(\d)_(conv|bn)", "branch1.{1-1}.{2}")]),
        *(rule for i in range(7) for rule in _module_keys(f"inception_b{i + 1}", 11 + i, _V4_A_B_KEYS)),
        *_module_keys("inception_reduction_b", 18, [(r"b([12])_(\d)_(conv|bn)", "branch{1-1}.{2-1}.{3}")]),
        *(rule for i in range(3) for rule in _module_keys(f"inception_c{i + 1}", 19 + i, _V4_C_KEYS)),
        (r"predictions", "last_linear"),
    ),
    head=("last_linear",),
)


def v4_stem_base(inputs, conv):
    """The three plain convs every net of the paper starts with (Figure 3, top)."""
    x = conv(inputs, 32, 3, strides=2, padding=V, name="stem_conv1")
    x = conv(x, 32, 3, padding=V, name="stem_conv2")
    return conv(x, 64, 3, name="stem_conv3")


@register_model(
    family="inception_v4", **PAPER,
    variants=[Variant("inception_v4", params=42_679_816, macs=12.28e9, accuracy="top-1 80.14 / top-5 94.98",
                      follows="paper Figures 3-9 / Cadene and timm inceptionv4", checkpoints=V4_CHECKPOINTS)],
    recipe=RECIPE,
    tuner_knobs={"dropout": DROPOUT},
    key_maps={"timm": TIMM_V4_KEYS},
    features=FeatureLevels(layers={"P2": "stem_mixed3a_concat"},
                           follows="timm feature_info (inception_v4): at stride 4 the stem's Mixed_3a (features.3), "
                                   "not Mixed_4a after it"),
)
def inception_v4(*, inputs, num_classes, include_top, pooling, classifier_activation, dropout=0.2):
    """Inception-v4: stem, 4 x Inception-A, Reduction-A, 7 x Inception-B, Reduction-B, 3 x Inception-C."""
    conv = make_conv(batch_norm=True)
    x = v4_stem_base(inputs, conv)
    for name, branches in V4_STEM:
        x = inception_module(x, branches, conv, name)
    stages = (("a", V4_A, 4), ("reduction_a", V4_REDUCTION_A, 1), ("b", V4_B, 7), ("reduction_b", V4_REDUCTION_B, 1),
              ("c", V4_C, 3))
    for stage, branches, repeats in stages:
        for i in range(repeats):
            x = inception_module(x, branches, conv, f"inception_{stage}{i + 1 if repeats > 1 else ''}")
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation, dropout=dropout or None)


# ------------------------------------------------------------------ Inception-ResNet blocks
def residual_inception(x, branches, conv, *, scale, activation=True, name):
    """Branches -> concat -> linear 1x1 up-projection (bias, no BN) -> scaled -> add -> ReLU."""
    y = inception_module(x, branches, conv, f"{name}_mix")
    y = symmetric_conv(y, x.shape[-1], 1, use_bias=True, kernel_initializer="glorot_uniform", name=f"{name}_up")
    y = layers.Rescaling(scale, name=f"{name}_scale")(y)
    x = layers.Add(name=f"{name}_add")([x, y])
    return layers.ReLU(name=f"{name}_relu")(x) if activation else x


IRV2_MIXED_5B = ([(96, 1)], [(48, 1), (64, 5)], [(64, 1), (96, 3), (96, 3)], [("avg_same", 3), (64, 1)])
IRV2_BLOCK35 = ([(32, 1)], [(32, 1), (32, 3)], [(32, 1), (48, 3), (64, 3)])
IRV2_MIXED_6A = ([(384, 3, 2, V)], [(256, 1), (256, 3), (384, 3, 2, V)], [MAX2])
IRV2_BLOCK17 = ([(192, 1)], [(128, 1), (160, (1, 7)), (192, (7, 1))])
IRV2_MIXED_7A = ([(256, 1), (384, 3, 2, V)], [(256, 1), (288, 3, 2, V)], [(256, 1), (288, 3), (320, 3, 2, V)],
                 [MAX2])
IRV2_BLOCK8 = ([(192, 1)], [(192, 1), (224, (1, 3)), (256, (3, 1))])

IRV1_BLOCK_A = ([(32, 1)], [(32, 1), (32, 3)], [(32, 1), (32, 3), (32, 3)])                       # Figure 10
IRV1_REDUCTION_A = ([(384, 3, 2, V)], [(192, 1), (192, 3), (256, 3, 2, V)], [MAX2])             # Figure 7
IRV1_BLOCK_B = ([(128, 1)], [(128, 1), (128, (1, 7)), (128, (7, 1))])                           # Figure 11
IRV1_REDUCTION_B = ([MAX2], [(256, 1), (384, 3, 2, V)], [(256, 1), (256, 3, 2, V)],
                    [(256, 1), (256, 3), (256, 3, 2, V)])                                       # Figure 12
IRV1_BLOCK_C = ([(192, 1)], [(192, 1), (192, (1, 3)), (192, (3, 1))])                           # Figure 13

#: Inception-ResNet-v1's trainable parameters at 299x299x3 and 1000 classes, derived from the
#: paper's Figures 10-14 (see the module docstring); recomputed independently in the tests.
INCEPTION_RESNET_V1_PARAMS = 22_756_328

#: timm's inception_resnet_v2 state_dict (``timm.models.inception_resnet_v2``) onto our layer names:
#: our residual blocks ``block35_n`` / ``block17_n`` / ``block8_n`` are timm's ``repeat`` /
#: ``repeat_1`` / ``repeat_2`` Sequentials, except the last, unactivated ``block8_10``: timm's ``block8``.
TIMM_IRV2_KEYS = KeyMap(
    rules=(
        (r"stem_conv1_(conv|bn)", "conv2d_1a.{1}"),
        (r"stem_conv2_(conv|bn)", "conv2d_2a.{1}"),
        (r"stem_conv3_(conv|bn)", "conv2d_2b.{1}"),
        (r"stem_conv4_(conv|bn)", "conv2d_3b.{1}"),
        (r"stem_conv5_(conv|bn)", "conv2d_4a.{1}"),
        (r"mixed5b_b1_1_(conv|bn)", "mixed_5b.branch0.{1}"),
        (r"mixed5b_b([23])_(\d)_(conv|bn)", "mixed_5b.branch{1-1}.{2-1}.{3}"),
        (r"mixed5b_b4_2_(conv|bn)", "mixed_5b.branch3.1.{1}"),
        (r"mixed6a_b1_1_(conv|bn)", "mixed_6a.branch0.{1}"),
        (r"mixed6a_b2_(\d)_(conv|bn)", "mixed_6a.branch1.{1-1}.{2}"),
        (r"mixed7a_b([123])_(\d)_(conv|bn)", "mixed_7a.branch{1-1}.{2-1}.{3}"),
        (r"block8_10_mix_b1_1_(conv|bn)", "block8.branch0.{1}"),
        (r"block8_10_mix_b2_(\d)_(conv|bn)", "block8.branch1.{1-1}.{2}"),
        (r"block8_10_up", "block8.conv2d"),
        (r"block35_(\d+)_mix_b1_1_(conv|bn)", "repeat.{1-1}.branch0.{2}"),
        (r"block35_(\d+)_mix_b([23])_(\d)_(conv|bn)", "repeat.{1-1}.branch{2-1}.{3-1}.{4}"),
        (r"block35_(\d+)_up", "repeat.{1-1}.conv2d"),
        (r"block17_(\d+)_mix_b1_1_(conv|bn)", "repeat_1.{1-1}.branch0.{2}"),
        (r"block17_(\d+)_mix_b2_(\d)_(conv|bn)", "repeat_1.{1-1}.branch1.{2-1}.{3}"),
        (r"block17_(\d+)_up", "repeat_1.{1-1}.conv2d"),
        (r"block8_(\d+)_mix_b1_1_(conv|bn)", "repeat_2.{1-1}.branch0.{2}"),
        (r"block8_(\d+)_mix_b2_(\d)_(conv|bn)", "repeat_2.{1-1}.branch1.{2-1}.{3}"),
        (r"block8_(\d+)_up", "repeat_2.{1-1}.conv2d"),
        (r"conv7b_(conv|bn)", "conv2d_7b.{1}"),
        (r"predictions", "classif"),
    ),
    head=("classif",),
)


def _residual_stages(x, conv, stages, final_activation):
    for stage, (kind, branches, repeats, scale) in enumerate(stages):
        for i in range(repeats):
            name = f"{kind}{i + 1 if repeats > 1 else ''}"
            if scale is None:
                x = inception_module(x, branches, conv, name)
            else:
                last = stage == len(stages) - 1 and i == repeats - 1
                x = residual_inception(x, branches, conv, scale=1.0 if last and not final_activation else scale,
                                       activation=final_activation or not last, name=name)
    return x


@register_model(
    family="inception_resnet", **PAPER,
    variants=[
        Variant("inception_resnet_v2", {"version": 2}, params=55_843_464, macs=13.18e9,
                accuracy="top-1 80.43 / top-5 95.31",
                follows="paper Figures 3, 16-18 / Cadene and timm inception_resnet_v2",
                notes="keras.applications.InceptionResNetV2 has 55,813,192 trainable: its BN layers have no gamma",
                keras_applications=("InceptionResNetV2", {}), checkpoints=IRV2_CHECKPOINTS),
        Variant("inception_resnet_v1", {"version": 1}, params=INCEPTION_RESNET_V1_PARAMS,
                accuracy="top-1 error 21.3 (paper, single crop)",
                follows="paper Figures 10-14, Reduction-A k/l/m/n = 192/192/256/384",
                notes="no published count: derived from the figures [C] (module docstring)"),
    ],
    recipe=RECIPE,
    tuner_knobs={"dropout": DROPOUT},
    key_maps={"timm": TIMM_IRV2_KEYS},  # inception_resnet_v1 has no published weights
)
def inception_resnet(*, inputs, num_classes, include_top, pooling, classifier_activation, version=2,
                     scales=(0.17, 0.10, 0.20), dropout=0.2):
    """Inception-ResNet v1 or v2.

    Args:
        version: 1 or 2 (set by the registry name).
        scales: residual scaling of the A/B/C blocks (paper section 3.3: 0.1 to 0.3).
        dropout: before the classifier (the paper keeps 0.8).
    """
    if version not in (1, 2):
        raise ValueError(f"inception_resnet: version must be 1 or 2, received {version!r}")
    for s in scales:
        check_range(s, 0.0, 1.0, "each of scales", "inception_resnet")
    conv = make_conv(batch_norm=True)
    x = v4_stem_base(inputs, conv)
    a, b, c = scales
    if version == 2:
        x = max_pool(x, 3, 2, name="stem_pool1")
        x = conv(x, 80, 1, name="stem_conv4")
        x = conv(x, 192, 3, padding=V, name="stem_conv5")
        x = max_pool(x, 3, 2, name="stem_pool2")
        stages = (("mixed5b", IRV2_MIXED_5B, 1, None), ("block35_", IRV2_BLOCK35, 10, a),
                  ("mixed6a", IRV2_MIXED_6A, 1, None), ("block17_", IRV2_BLOCK17, 20, b),
                  ("mixed7a", IRV2_MIXED_7A, 1, None), ("block8_", IRV2_BLOCK8, 10, c))
        x = _residual_stages(x, conv, stages, final_activation=False)
        x = conv(x, 1536, 1, name="conv7b")
    else:
        x = max_pool(x, 3, 2, name="stem_pool1")
        x = conv(x, 80, 1, name="stem_conv4")
        x = conv(x, 192, 3, padding=V, name="stem_conv5")
        x = conv(x, 256, 3, strides=2, padding=V, name="stem_conv6")
        stages = (("block_a", IRV1_BLOCK_A, 5, a), ("reduction_a", IRV1_REDUCTION_A, 1, None),
                  ("block_b", IRV1_BLOCK_B, 10, b), ("reduction_b", IRV1_REDUCTION_B, 1, None),
                  ("block_c", IRV1_BLOCK_C, 5, c))
        x = _residual_stages(x, conv, stages, final_activation=True)
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation, dropout=dropout or None)
