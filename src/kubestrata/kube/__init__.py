"""The Kubernetes object model every engine shares."""

from kubestrata.kube.objects import KubeObject, ObjectRef, Source
from kubestrata.kube.selectors import LabelSelector, selector_matches

__all__ = ["KubeObject", "ObjectRef", "Source", "LabelSelector", "selector_matches"]
