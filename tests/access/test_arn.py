"""ARN canonicalisation vectors from aws-iam-authenticator pkg/arn/arn_test.go, plus EKS's path-less form."""

import pytest

from kubestrata.eks.arn import ArnError, arn_like, canonicalize, has_path, session_arn, strip_path

# upstream TestUserARN, with its IAM provider (role name -> ARN incl. path)
PROVIDER = {
    "Admin": "arn:aws:iam::123456789012:role/Admin",
    "WithPath": "arn:aws:iam::123456789012:role/Org/Team/WithPath",
}
UPSTREAM = [
    ("NOT AN ARN", None),
    ("arn:aws:iam::123456789012:user/Alice", "arn:aws:iam::123456789012:user/Alice"),
    ("arn:aws:iam::123456789012:role/Users", "arn:aws:iam::123456789012:role/Users"),
    ("arn:aws:sts::123456789012:assumed-role/Admin/Session", "arn:aws:iam::123456789012:role/Admin"),
    ("arn:aws:sts::123456789012:federated-user/Bob", "arn:aws:sts::123456789012:federated-user/Bob"),
    ("arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root"),
    (
        "arn:aws:sts::123456789012:assumed-role/WithPath/Session",
        "arn:aws:iam::123456789012:role/Org/Team/WithPath",
    ),
    ("arn:aws:sts::123456789012:assumed-role/NotARole/Session", None),
]


@pytest.mark.parametrize("arn,want", UPSTREAM)
def test_upstream_vectors_with_iam_lookup(arn, want):
    if want is None:
        with pytest.raises(ArnError):
            canonicalize(arn, PROVIDER)
    else:
        assert canonicalize(arn, PROVIDER) == want


@pytest.mark.parametrize(
    "arn,want",
    [
        # EKS: no IAM lookup, so the canonical role ARN never carries a path
        (
            "arn:aws:sts::123456789012:assumed-role/WithPath/Session",
            "arn:aws:iam::123456789012:role/WithPath",
        ),
        (
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_abc/jane@example.com",
            "arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_abc",
        ),
        ("arn:aws-cn:sts::123456789012:assumed-role/r/s", "arn:aws-cn:iam::123456789012:role/r"),
        ("arn:aws-us-gov:sts::123456789012:assumed-role/r/s", "arn:aws-us-gov:iam::123456789012:role/r"),
        ("arn:aws-iso:sts::123456789012:assumed-role/r/s", "arn:aws-iso:iam::123456789012:role/r"),
        ("arn:aws-iso-b:iam::123456789012:user/u", "arn:aws-iso-b:iam::123456789012:user/u"),
    ],
)
def test_eks_canonical_form(arn, want):
    assert canonicalize(arn) == want


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sts::123456789012:assumed-role/OnlyRole",  # no session
        "arn:aws:s3:::bucket",  # not an identity service
        "arn:aws:iam::123456789012:group/devs",  # groups cannot authenticate
        "arn:aws:sts::123456789012:session/x",
        "arn:aws-moon:iam::123456789012:role/r",  # unknown partition
        "arn:aws:iam",  # too few sections
    ],
)
def test_rejected(arn):
    with pytest.raises(ArnError):
        canonicalize(arn)


def test_paths():
    p = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Admin_abc"
    assert has_path(p)
    assert strip_path(p) == "arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_abc"
    assert not has_path("arn:aws:iam::123456789012:role/plain")
    # the session ARN STS hands out has no path, so the rolearn with a path can never equal it
    assert canonicalize(session_arn(p, "jane")) != p


def test_arn_like():
    assert arn_like(
        "arn:aws:iam::123456789012:role/awsreservedsso_view_abc",
        "arn:aws:iam::123456789012:role/awsreservedsso_view_*",
    )
    assert not arn_like(
        "arn:aws:iam::123456789012:role/awsreservedsso_billing_abc",
        "arn:aws:iam::123456789012:role/awsreservedsso_view_*",
    )
    assert arn_like("arn:aws:iam::123456789012:role/a", "arn:aws:iam::12345678901?:role/a")
    assert not arn_like("not-an-arn", "arn:*:*:*:*:*")
