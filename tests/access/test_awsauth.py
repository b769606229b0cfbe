"""aws-auth parsing with aws-iam-authenticator's semantics (configmap.go ParseMap, config/mapper.go)."""

import pytest

from kubestrata.access.awsauth import Caller, TemplateError, authenticate, parse_aws_auth, render_template

NODE = "    - rolearn: arn:aws:iam::111122223333:role/node\n      username: system:node:{{EC2PrivateDNSName}}\n      groups: [system:bootstrappers, system:nodes]\n"
ADMIN = "    - rolearn: arn:aws:iam::111122223333:role/admin\n      username: admin\n      groups: [system:masters]\n"


def _dedent(s: str) -> str:
    return "\n".join(line[4:] for line in s.splitlines()) + "\n"


def test_valid_keys_parse():
    aa = parse_aws_auth({"mapRoles": _dedent(NODE + ADMIN)})
    assert not aa.problems
    assert set(aa.roles) == {"arn:aws:iam::111122223333:role/node", "arn:aws:iam::111122223333:role/admin"}


def test_tab_drops_whole_key_including_nodes():
    bad = _dedent(NODE + ADMIN).replace("  groups: [system:masters]", "\tgroups: [system:masters]")
    aa = parse_aws_auth(
        {"mapRoles": bad, "mapUsers": "- userarn: arn:aws:iam::111122223333:user/a\n  username: a\n"}
    )
    assert aa.roles == {}
    assert [p.field for p in aa.problems if p.scope == "key"] == ["data.mapRoles"]
    assert list(aa.users)  # the other key is unaffected


def test_duplicate_yaml_key_drops_whole_key():
    # yaml.v2 rejects a repeated mapping key; PyYAML would silently keep the last
    aa = parse_aws_auth({"mapRoles": "- rolearn: arn:aws:iam::1:role/a\n  username: a\n  username: b\n"})
    assert aa.roles == {} and aa.dropped_keys() == ["mapRoles"]


def test_not_a_list_drops_key():
    aa = parse_aws_auth({"mapUsers": "userarn: arn:aws:iam::1:user/a\n"})
    assert aa.users == {} and aa.dropped_keys() == ["mapUsers"]


def test_non_string_value_is_a_key_problem():
    aa = parse_aws_auth({"mapRoles": [{"rolearn": "x"}]})
    assert aa.dropped_keys() == ["mapRoles"]


def test_invalid_entries_dropped_one_by_one():
    text = (
        _dedent(ADMIN)
        + "- username: nobody\n  groups: [x]\n- rolearn: arn:aws:iam::1:role/b\n  sso: {permissionSetName: P, accountID: '111122223333'}\n"
    )
    aa = parse_aws_auth({"mapRoles": text})
    assert list(aa.roles) == ["arn:aws:iam::111122223333:role/admin"]
    msgs = [p.message for p in aa.problems if p.scope == "entry"]
    assert any("one of rolearn or SSO" in m for m in msgs) and any("only one of" in m for m in msgs)


def test_empty_userarn_dropped():
    aa = parse_aws_auth(
        {"mapUsers": "- userarn: ''\n  username: x\n- userarn: arn:aws:iam::1:user/ok\n  username: ok\n"}
    )
    assert list(aa.users) == ["arn:aws:iam::1:user/ok"]


def test_wrong_type_field_left_empty_entry_kept():
    aa = parse_aws_auth(
        {"mapUsers": "- userarn: arn:aws:iam::1:user/alice\n  username: alice\n  groups: system:masters\n"}
    )
    m = aa.users["arn:aws:iam::1:user/alice"]
    assert m.groups == ()
    assert [p.field for p in aa.problems] == ["data.mapUsers[0].groups"]


def test_non_string_group_item_becomes_empty():
    aa = parse_aws_auth({"mapUsers": "- userarn: arn:aws:iam::1:user/a\n  groups: [ok, 7]\n"})
    assert aa.users["arn:aws:iam::1:user/a"].groups == ("ok", "")


def test_field_names_case_insensitive_like_go():
    aa = parse_aws_auth({"mapRoles": "- roleARN: arn:aws:iam::1:role/R\n  UserName: r\n  Groups: [g]\n"})
    m = aa.roles["arn:aws:iam::1:role/r"]
    assert (m.username, m.groups) == ("r", ("g",))


def test_role_keys_lowercased_later_duplicate_wins():
    text = "- rolearn: arn:aws:iam::1:role/Admin\n  username: first\n- rolearn: arn:aws:iam::1:role/admin\n  username: second\n"
    aa = parse_aws_auth({"mapRoles": text})
    assert list(aa.roles) == ["arn:aws:iam::1:role/admin"]
    assert aa.roles["arn:aws:iam::1:role/admin"].username == "second"
    assert [(lost.username, won.username) for lost, won in aa.shadowed] == [("first", "second")]


def test_user_entries_case_sensitive_both_kept():
    text = "- userarn: arn:aws:iam::1:user/Bob\n  username: a\n- userarn: arn:aws:iam::1:user/bob\n  username: b\n"
    aa = parse_aws_auth({"mapUsers": text})
    assert set(aa.users) == {"arn:aws:iam::1:user/Bob", "arn:aws:iam::1:user/bob"}
    assert any(p.scope == "ambiguous" for p in aa.problems)


def test_map_accounts_keeps_text_of_unquoted_numbers():
    aa = parse_aws_auth({"mapAccounts": "- 012345678901\n- '111122223333'\n"})
    assert aa.accounts == ["012345678901", "111122223333"]


@pytest.mark.parametrize("value", ["", "  ", '""', "''", "``"])
def test_skippable_values(value):
    aa = parse_aws_auth({"mapRoles": value, "mapUsers": value, "mapAccounts": value})
    assert not aa.problems and not aa.mappings


def test_role_arn_with_path_never_matches():
    aa = parse_aws_auth({"mapRoles": "- rolearn: arn:aws:iam::1:role/team/dev\n  username: dev\n"})
    caller = Caller("arn:aws:sts::1:assumed-role/dev/s")
    assert authenticate(aa, caller) is None
    aa2 = parse_aws_auth({"mapRoles": "- rolearn: arn:aws:iam::1:role/dev\n  username: dev\n"})
    assert authenticate(aa2, caller) == ("dev", [])


def test_account_mapping_username_is_canonical_arn():
    aa = parse_aws_auth({"mapAccounts": "- '444455556666'\n"})
    got = authenticate(aa, Caller("arn:aws:sts::444455556666:assumed-role/any/s"))
    assert got == ("arn:aws:iam::444455556666:role/any", [])


def test_sso_matcher_only_when_enabled():
    aa = parse_aws_auth(
        {
            "mapRoles": "- sso: {permissionSetName: ViewOnlyAccess, accountID: '012345678912'}\n  username: v\n"
        },
        sso_enabled=True,
    )
    caller = Caller("arn:aws:sts::012345678912:assumed-role/AWSReservedSSO_ViewOnlyAccess_abcdefg/jane")
    assert authenticate(aa, caller, sso_enabled=True) == ("v", [])
    assert authenticate(aa, caller, sso_enabled=False) is None
    assert list(aa.roles) == ["arn:aws:iam::012345678912:role/awsreservedsso_viewonlyaccess_*"]


@pytest.mark.parametrize(
    "bad",
    [
        "{permissionSetName: ViewOnlyAccess, accountID: '0123456789'}",
        "{permissionSetName: 'ViewOnlyAccess*', accountID: '012345678912'}",
        "{permissionSetName: ViewOnlyAccess, accountID: '012345678912', partition: aws-nk}",
    ],
)
def test_invalid_sso_matchers_dropped(bad):
    aa = parse_aws_auth({"mapRoles": f"- sso: {bad}\n  username: v\n"})
    assert not aa.roles and any(p.scope == "entry" for p in aa.problems)


# upstream server_test.go TestRenderTemplate vectors
@pytest.mark.parametrize(
    "template,caller,want",
    [
        ("a-{{AccountID}}-b", Caller("arn:aws:sts::123:assumed-role/r/s"), "a-123-b"),
        ("a-{{AccessKeyID}}-b", Caller("arn:aws:sts::1:assumed-role/r/s", access_key_id="321"), "a-321-b"),
        ("a-{{SessionName}}-b", Caller("arn:aws:sts::1:assumed-role/r/jdoe", "jdoe"), "a-jdoe-b"),
        (
            "a-{{SessionName}}-b",
            Caller("arn:aws:sts::1:assumed-role/r/x", "jdoe@example.com"),
            "a-jdoe-example.com-b",
        ),
        (
            "a-{{SessionNameRaw}}-b",
            Caller("arn:aws:sts::1:assumed-role/r/x", "jdoe@example.com"),
            "a-jdoe@example.com-b",
        ),
        (
            "a-{{AccountID}}-{{SessionName}}-{{SessionNameRaw}}-b",
            Caller("arn:aws:sts::123:assumed-role/r/x", "jdoe@example.com"),
            "a-123-jdoe-example.com-jdoe@example.com-b",
        ),
        (
            "system:node:{{EC2PrivateDNSName}}",
            Caller(
                "arn:aws:sts::1:assumed-role/n/i-0123456789abcdef0",
                "i-0123456789abcdef0",
                private_dns_name="ip-10-0-0-1.ec2.internal",
            ),
            "system:node:ip-10-0-0-1.ec2.internal",
        ),
    ],
)
def test_render_template(template, caller, want):
    assert render_template(template, caller) == want


def test_ec2_private_dns_needs_instance_id_session():
    with pytest.raises(TemplateError):
        render_template(
            "{{EC2PrivateDNSName}}",
            Caller("arn:aws:sts::1:assumed-role/n/i-aaaaa", "i-aaaaa", private_dns_name="x"),
        )


def test_sso_matcher_overlapping_rolearn_is_ambiguous():
    text = (
        "- sso: {permissionSetName: Admin, accountID: '111122223333'}\n  username: sso-admin\n  groups: [system:masters]\n"
        "- rolearn: arn:aws:iam::111122223333:role/AWSReservedSSO_Admin_0123abcd\n  username: viewer\n  groups: [viewers]\n"
        "- rolearn: arn:aws:iam::111122223333:role/other\n  username: other\n"
    )
    aa = parse_aws_auth({"mapRoles": text})
    amb = [p for p in aa.problems if p.scope == "ambiguous"]
    assert [(p.field, p.observed) for p in amb] == [
        ("data.mapRoles[0]", "arn:aws:iam::111122223333:role/AWSReservedSSO_Admin_0123abcd")
    ]


def test_wildcard_rolearn_overlap():
    text = "- rolearn: arn:aws:iam::1:role/ci-*\n  username: ci\n- rolearn: arn:aws:iam::1:role/ci-prod\n  username: prod\n"
    aa = parse_aws_auth({"mapRoles": text})
    assert [p.field for p in aa.problems if p.scope == "ambiguous"] == ["data.mapRoles[0]"]
    assert authenticate(aa, Caller("arn:aws:sts::1:assumed-role/ci-dev/x")) == ("ci", [])


def test_only_first_yaml_document_counts():
    aa = parse_aws_auth(
        {"mapRoles": _dedent(ADMIN) + "---\n- rolearn: arn:aws:iam::1:role/second\n  username: s\n"}
    )
    assert list(aa.roles) == ["arn:aws:iam::111122223333:role/admin"] and not aa.problems


def test_null_entry_dropped():
    aa = parse_aws_auth({"mapRoles": "- null\n" + _dedent(ADMIN)})
    assert list(aa.roles) == ["arn:aws:iam::111122223333:role/admin"]
    assert [p.message for p in aa.problems] == ["entry is null, not a mapping; dropped"]
