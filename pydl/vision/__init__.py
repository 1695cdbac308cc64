"""Detection and segmentation: box ops (torchvision's names), mAP, detectors, segmenters.

``pydl.vision.ops``: box_area, box_convert, box_iou, generalized_box_iou, nms, batched_nms,
roi_align, roi_pool (RoIAlign / RoIPool modules). ``pydl.vision.metrics``: mean average
precision (VOC and COCO). ``pydl.vision.detection`` / ``pydl.vision.segmentation``: models.
"""
from . import detection, metrics, ops, segmentation, shapes

__all__ = ["detection", "metrics", "ops", "segmentation", "shapes"]
