"""IAM on the local cloud: every component runs under its own role, as it does on AWS.

The roles come from the transformed templates (`make transform`, .aws-sam/contract/templates.json,
or QS_LOCAL_TEMPLATES for a deliberately broken copy), instantiated for the local cloud's stack
(devkit/stackmodel.py) so that their policies name the local tables, queues, groups and topics.
Each is created on the emulator and assumed once through sts:AssumeRole, as the Lambda and EC2
services do; then moto's IAM authorization is switched on (INITIAL_NO_AUTH_ACTION_COUNT reached) and
every request is authenticated by moto and judged by devkit/localcloud/policy.py on its action AND
resource, so a call a role lacks fails with AccessDenied as on AWS.

Who runs as whom, in the daemon's one process:
- the local cloud's own code (creating resources, the Auto Scaling and Run Command emulation, status)
  and the operator's clients (tests, `explain --local`) use the account's admin, whose access key
  is the dummy `local` the project has always used;
- the product's side (the demo's producer; `submit`, `credits` and `jobs` with `--local`) runs as the
  `Producer` role, which holds only the stack's ProducerPolicy (its credentials are in the state
  file, as `producer`);
- a function invocation runs under its role's session (`acting_as`): every boto3 client signs with
  the session of the component whose code runs in the current thread, whatever session created it,
  and threads the function starts inherit it (the SQS adapter reads queues in parallel);
- each worker process gets its pool's instance-role session in its environment, as the instance
  metadata service hands it to a container on EC2.
Session tokens are not expired by moto, so a long `local up` keeps working past the hour AWS allows.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError
from moto.ec2.models import ec2_backends
from moto.iam.access_control import IAMRequest
from moto.iam.models import iam_backends

from devkit import stackmodel
from devkit.localcloud.policy import Access, evaluate, iam_prefix, requested_access
from devkit.localcloud.stack import LocalSettings, local_stack, partition_keys

logger = logging.getLogger(__name__)

ADMIN_USER = "local-admin"
#: The dummy credentials the operator's clients have always used; on the local cloud they are the admin's.
ADMIN_KEY = "local"
ACCOUNT = stackmodel.ACCOUNT
WORKER = "Worker"
#: The product that submits jobs: a role holding only the stack's ProducerPolicy.
PRODUCER = "Producer"
PRODUCER_POLICY = "ProducerPolicy"
#: The component whose code runs in this thread (None: the local cloud's own code, as admin).
_identity: contextvars.ContextVar[ReadOnlyCredentials | None] = contextvars.ContextVar("identity", default=None)
_component: contextvars.ContextVar[str | None] = contextvars.ContextVar("component", default=None)
_patched = threading.Lock()
#: Each local table's partition key attribute (set when the roles are created): DynamoDB item
#: requests are judged with their `dynamodb:LeadingKeys`, as AWS judges them.
_partition_keys: dict[str, str] = {}
_installed: dict[str, bool] = {}


@dataclass(frozen=True)
class ComponentRole:
    """The role a component runs under: its trust policy, inline policies and managed policy ARNs."""

    component: str  # a function's logical id, or "Worker:<pool>"
    logical_id: str  # the role's logical id in its template
    trust: dict[str, Any]
    policies: dict[str, dict[str, Any]]
    managed: list[str] = field(default_factory=list)

    def documents(self) -> list[dict[str, Any]]:
        return list(self.policies.values())


def worker_component(pool: str) -> str:
    return f"{WORKER}:{pool}"


def component_roles(stack: stackmodel.Stack) -> list[ComponentRole]:
    """Every function's execution role and every pool's instance role, with resolved policies."""
    roles = []
    for resource in stack.resources().values():
        if resource.type == "AWS::Lambda::Function":
            role_id = resource.raw["Properties"]["Role"]["Fn::GetAtt"][0]
            roles.append(_role(resource.logical_id, stack.resources()[role_id]))
    for nested in stack.stacks():
        for resource in nested.resources().values():
            if resource.type != "AWS::EC2::LaunchTemplate":
                continue
            profile_id = resource.raw["Properties"]["LaunchTemplateData"]["IamInstanceProfile"]["Arn"]["Fn::GetAtt"][0]
            (role_ref,) = nested.resources()[profile_id].raw["Properties"]["Roles"]
            role = nested.resources()[role_ref["Ref"]]
            roles.append(_role(worker_component(str(nested.parameters["PoolName"])), role))
    producer = stack.resources().get(PRODUCER_POLICY)
    if producer is not None:
        # The README's advice, followed: a role of the account with the managed policy attached.
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
            ],
        }
        roles.append(
            ComponentRole(PRODUCER, PRODUCER_POLICY, trust, {PRODUCER_POLICY: producer.properties["PolicyDocument"]})
        )
    return roles


def _role(component: str, resource: stackmodel.Resource) -> ComponentRole:
    properties = resource.properties
    policies = {p["PolicyName"]: p["PolicyDocument"] for p in properties.get("Policies", [])}
    # AWS::IAM::Policy resources attached to the role anywhere in the stack tree: by `!Ref Role` in
    # its own stack, or by the role's name passed to a nested stack (each queue stack grants the
    # refund function its own queues).
    name = resource.stack.resource_ref(resource)
    root = resource.stack
    while root.parent is not None:
        root = root.parent
    for attached in root.walk():
        if attached.type == "AWS::IAM::Policy" and any(
            _names_role(attached, entry, resource, name) for entry in attached.raw["Properties"]["Roles"]
        ):
            policies[attached.properties["PolicyName"]] = attached.properties["PolicyDocument"]
    return ComponentRole(
        component=component,
        logical_id=resource.logical_id,
        trust=properties["AssumeRolePolicyDocument"],
        policies=policies,
        managed=list(properties.get("ManagedPolicyArns", [])),
    )


def _names_role(policy: stackmodel.Resource, entry: Any, role: stackmodel.Resource, name: str) -> bool:
    """Whether one `Roles` entry of `policy` is `role`: a Ref to a resource is that resource of the
    policy's own stack (sibling pool stacks have equally named roles); anything else (a parameter
    carrying a role's name into a nested stack) is compared by the name it resolves to."""
    target = entry.get("Ref") if isinstance(entry, dict) else None
    if target in policy.stack.resources():
        return policy.stack is role.stack and target == role.logical_id
    return bool(policy.stack.resolve(entry) == name)


def role_name(settings: LocalSettings, component: str) -> str:
    return f"{settings.stack}-{component.replace(':', '-')}"[:64]


class LocalIam:
    """Creates the roles, assumes them, and switches authorization on for the emulator in this process."""

    def __init__(self, settings: LocalSettings, endpoint_url: str, path: Path | None = None) -> None:
        self.settings = settings
        self.endpoint_url = endpoint_url
        self.roles = {r.component: r for r in component_roles(local_stack(settings, path))}
        self.sessions: dict[str, ReadOnlyCredentials] = {}

    def start(self) -> None:
        """Admin, roles and sessions while authorization is still off; then every request is judged."""
        _partition_keys.update(partition_keys(self.settings))
        session = boto3.session.Session(
            region_name=self.settings.region, aws_access_key_id=ADMIN_KEY, aws_secret_access_key=ADMIN_KEY
        )
        iam = session.client("iam", endpoint_url=self.endpoint_url)
        sts = session.client("sts", endpoint_url=self.endpoint_url)
        iam.create_user(UserName=ADMIN_USER)
        everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName=ADMIN_USER, PolicyName="admin", PolicyDocument=json.dumps(everything))
        _set_admin_key(ADMIN_USER)
        for component, role in self.roles.items():
            name = role_name(self.settings, component)
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(role.trust))["Role"]["Arn"]
            for policy, document in role.policies.items():
                iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(document))
            # The managed policies (Lambda's log and X-Ray writes) cover calls the Lambda runtime
            # makes, which the local cloud does not emulate; nothing here may rely on them.
            credentials = sts.assume_role(RoleArn=arn, RoleSessionName=f"local-{component.replace(':', '-')}")[
                "Credentials"
            ]
            self.sessions[component] = ReadOnlyCredentials(
                credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
            )
        install()
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0
        logger.info("IAM enforced: %s", ", ".join(f"{c} as {role_name(self.settings, c)}" for c in self.roles))

    @contextmanager
    def acting_as(self, component: str) -> Iterator[None]:
        """Run the block (and the threads it starts) under `component`'s role."""
        token = _identity.set(self.sessions[component])
        named = _component.set(component)
        try:
            yield
        finally:
            _component.reset(named)
            _identity.reset(token)

    def environment(self, component: str) -> dict[str, str]:
        """A process's credential variables for `component`'s role (what a worker container gets)."""
        session = self.sessions[component]
        return {
            "AWS_ACCESS_KEY_ID": str(session.access_key),
            "AWS_SECRET_ACCESS_KEY": str(session.secret_key),
            "AWS_SESSION_TOKEN": str(session.token),
        }


def current_component() -> str | None:
    """The component whose code runs in this thread, or None for the local cloud's own code."""
    return _component.get()


def _set_admin_key(user: str) -> None:
    """Give the admin user the access key `local`/`local`, so every existing operator client keeps working."""
    backend = iam_backends[ACCOUNT]["aws"]
    key = backend.create_access_key(user)
    key.access_key_id = ADMIN_KEY
    key.secret_access_key = ADMIN_KEY


# --- process-wide hooks ------------------------------------------------------------------------------
def install() -> None:
    """Patch this process once: signing by the current identity, threads inheriting it, the authorizer."""
    with _patched:
        if _installed:
            return
        for cls in (Credentials, RefreshableCredentials):
            _sign_as_current_identity(cls)
        original_start = threading.Thread.start

        def start(self: threading.Thread) -> None:
            # Python 3.14's thread_inherit_context, for this process: a function's threads act as it.
            context = contextvars.copy_context()
            run = self.run
            self.run = lambda: context.run(run)  # type: ignore[method-assign]
            original_start(self)

        threading.Thread.start = start  # type: ignore[method-assign]
        ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = _authorize  # type: ignore[method-assign]
        _installed["done"] = True


def _sign_as_current_identity(cls: type[Credentials]) -> None:
    frozen = cls.get_frozen_credentials

    def get_frozen_credentials(self: Credentials) -> ReadOnlyCredentials:
        current = _identity.get()
        return current if current is not None else frozen(self)

    cls.get_frozen_credentials = get_frozen_credentials  # type: ignore[method-assign]


def _authorize(self: Any, resource: str = "*") -> None:
    """moto's hook for every request: authenticate with moto, then judge each (action, resource)."""
    if ActionAuthenticatorMixin.request_count < moto_settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1
        return
    request = IAMRequest(
        account_id=self.current_account,
        method=self.method,
        path=self.raw_path + (f"?{self.uri.split('?', 1)[1]}" if "?" in self.uri else ""),
        data=self.data,
        body=self.raw_body,
        headers=self.headers,
        action=self._get_action(),
    )
    if request._service != "monitoring":
        # moto recomputes CloudWatch's signature (botocore sends it smithy-rpc-v2-cbor) over the decoded
        # body and never matches; its caller is still identified by its access key and judged below,
        # so only the signature check is left out for CloudWatch.
        request.check_signature()
    identity = request._access_key
    documents = [_document(p) for p in identity.collect_policies()]
    for access in requested_access(
        iam_prefix(request._service),
        self._get_action(),
        self._get_param,
        request._region,
        self.current_account,
        partition_keys=_partition_keys,
    ):
        decision = evaluate(documents, access, resource_context(access))
        if not decision.allowed:
            logger.warning(
                "AccessDenied: %s %s on %s (%s)", identity.arn, access.action, access.resource, decision.reason
            )
            raise AccessDeniedError(user_arn=identity.arn, action=f"{access.action} on resource {access.resource}")


def _document(policy: Any) -> dict[str, Any]:
    """A policy document from what moto stores (a managed Policy, a JSON string, or a dict)."""
    if hasattr(policy, "versions"):
        text = next(v.document for v in policy.versions if v.is_default)
    elif isinstance(policy, str):
        text = policy
    else:
        text = policy["policy_document"]
    document: dict[str, Any] = json.loads(text) if isinstance(text, str) else text
    return document


def resource_context(access: Access) -> Mapping[str, str]:
    """The condition keys AWS derives from the resource: an instance's tags (ssm:resourceTag/...)."""
    if ":instance/" not in access.resource:
        return {}
    _, _, _, region, account, rest = access.resource.split(":", 5)
    try:
        instance = ec2_backends[account][region].get_instance(rest.split("/", 1)[1])
    except Exception:  # an unknown instance has no tags: its conditional grant fails, as on AWS
        return {}
    tags = {t["key"]: t["value"] for t in instance.get_tags()}
    prefix = access.action.split(":", 1)[0]
    return {f"{prefix}:resourceTag/{k}": str(v) for k, v in tags.items()} | {
        f"aws:ResourceTag/{k}": str(v) for k, v in tags.items()
    }
