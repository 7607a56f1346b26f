"""TLS, mTLS, bearer tokens and roles, as a caller meets them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import trustme
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc

from baton import Client, NotFound, TLSConfig, Unauthenticated, Unavailable
from baton_server.app import StartupError
from baton_server.auth import policy
from baton_server.auth.tokens import Role, TokenConfigError, TokenStore, hash_token
from tests.conftest import server_config, start_thread_server
from tests.integration.test_contract import SERVICES

TOKENS = {Role.WORKER: "worker-secret", Role.CLIENT: "client-secret", Role.ADMIN: "admin-secret"}


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def _write_pair(tmp_path: Path, cert: trustme.LeafCert, name: str) -> tuple[Path, Path]:
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    cert.private_key_pem.write_to_path(str(key_file))
    return cert_file, key_file


def _tls_server(database_url: str, tmp_path: Path, ca: trustme.CA, *, mtls: bool):
    cert_file, key_file = _write_pair(tmp_path, ca.issue_cert("localhost", "127.0.0.1"), "server")
    client_ca = None
    if mtls:
        client_ca = tmp_path / "client-ca.pem"
        ca.cert_pem.write_to_path(str(client_ca))
    return start_thread_server(
        server_config(
            database_url,
            listen="localhost:0",
            tls_cert_file=cert_file,
            tls_key_file=key_file,
            tls_client_ca_file=client_ca,
        )
    )


def _lookup(target: str, **kwargs: object) -> None:
    """A call that reaches the servicer: NOT_FOUND means the transport worked."""
    with Client(target, **kwargs) as client, pytest.raises(NotFound):  # type: ignore[arg-type]
        client.get_workflow("nobody")


def test_tls_connects_with_the_right_ca_and_not_without_it(
    database_url: str, tmp_path: Path, ca: trustme.CA
) -> None:
    server = _tls_server(database_url, tmp_path, ca, mtls=False)
    target = f"localhost:{server.running.port}"
    try:
        _lookup(target, tls=TLSConfig(ca_cert=ca.cert_pem.bytes()))
        with Client(target, tls=True) as client, pytest.raises(Unavailable):
            client.get_workflow("nobody")  # the system CAs do not know this CA
        with Client(target, tls=False) as client, pytest.raises(Unavailable):
            client.get_workflow("nobody")  # plaintext to a TLS listener
    finally:
        server.stop()


def test_mtls_needs_a_client_certificate_signed_by_the_configured_ca(
    database_url: str, tmp_path: Path, ca: trustme.CA
) -> None:
    server = _tls_server(database_url, tmp_path, ca, mtls=True)
    target = f"localhost:{server.running.port}"
    good = ca.issue_cert("worker-1")
    stranger = trustme.CA().issue_cert("intruder")
    try:
        _lookup(
            target,
            tls=TLSConfig(
                ca_cert=ca.cert_pem.bytes(),
                client_cert=good.cert_chain_pems[0].bytes(),
                client_key=good.private_key_pem.bytes(),
            ),
        )
        for client_tls in (
            TLSConfig(ca_cert=ca.cert_pem.bytes()),
            TLSConfig(
                ca_cert=ca.cert_pem.bytes(),
                client_cert=stranger.cert_chain_pems[0].bytes(),
                client_key=stranger.private_key_pem.bytes(),
            ),
        ):
            with Client(target, tls=client_tls) as client, pytest.raises(Unavailable):
                client.get_workflow("nobody")
    finally:
        server.stop()


def test_plaintext_on_a_public_address_is_refused_unless_asked_for(database_url: str) -> None:
    with pytest.raises(StartupError, match="--insecure"):
        start_thread_server(server_config(database_url, listen="0.0.0.0:0"))
    server = start_thread_server(server_config(database_url, listen="0.0.0.0:0", insecure=True))
    server.stop()


def test_bad_token_configuration_is_refused_with_the_line_named(tmp_path: Path) -> None:
    with pytest.raises(TokenConfigError, match=r"tokens:1: unknown role 'root'"):
        TokenStore.parse("root sha256:" + "0" * 64, "tokens")
    with pytest.raises(TokenConfigError, match=r"tokens:2: expected a token hash"):
        TokenStore.parse("# comment\nworker secret-in-clear", "tokens")
    store = TokenStore.parse(f"admin {hash_token('x')} oncall", "tokens")
    assert store.resolve("x") is not None and store.resolve("y") is None


@pytest.fixture
def authed(database_url: str) -> Iterator[str]:
    entries = ";".join(f"{role} {hash_token(token)} {role}-test" for role, token in TOKENS.items())
    server = start_thread_server(server_config(database_url, tokens=entries))
    yield server.target
    server.stop()


def _methods() -> list[tuple[str, object]]:
    pool = descriptor_pool.Default()
    return [(s, m) for s in SERVICES for m in pool.FindServiceByName(s).methods]


def test_the_policy_names_every_rpc_of_the_contract() -> None:
    described = {f"{s}/{m.name}" for s, m in _methods()}  # type: ignore[attr-defined]
    assert described == policy.listed_methods()


def _call(
    target: str, service: str, method: object, token: str | None, request: object = None
) -> grpc.StatusCode:
    return _call_with_details(target, service, method, token, request)[0]


def _call_with_details(
    target: str, service: str, method: object, token: str | None, request: object = None
) -> tuple[grpc.StatusCode, str]:
    request_class = GetMessageClass(method.input_type)  # type: ignore[attr-defined]
    request = request if request is not None else request_class()
    response_class = GetMessageClass(method.output_type)  # type: ignore[attr-defined]
    path = f"/{service}/{method.name}"  # type: ignore[attr-defined]
    metadata = [("authorization", f"Bearer {token}")] if token else []
    streaming = (method.client_streaming, method.server_streaming)  # type: ignore[attr-defined]
    with grpc.insecure_channel(target) as channel:
        try:
            if streaming == (True, True):
                call = channel.stream_stream(
                    path, request_class.SerializeToString, response_class.FromString
                )
                list(call(iter([]), timeout=5, metadata=metadata))
            elif streaming == (False, True):
                call = channel.unary_stream(
                    path, request_class.SerializeToString, response_class.FromString
                )
                list(call(request, timeout=5, metadata=metadata))
            else:
                call = channel.unary_unary(
                    path, request_class.SerializeToString, response_class.FromString
                )
                call(request, timeout=5, metadata=metadata)
        except grpc.RpcError as exc:
            return exc.code(), exc.details()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize(
    ("service", "method"), _methods(), ids=lambda v: getattr(v, "name", str(v).split(".")[-1])
)
def test_every_rpc_answers_each_token_and_role_as_the_policy_says(
    authed: str, service: str, method: object
) -> None:
    assert _call(authed, service, method, None) == grpc.StatusCode.UNAUTHENTICATED
    assert _call(authed, service, method, "not-a-token") == grpc.StatusCode.UNAUTHENTICATED
    allowed = policy.allowed_roles(f"/{service}/{method.name}")  # type: ignore[attr-defined]
    for role, token in TOKENS.items():
        code = _call(authed, service, method, token)
        if role in allowed:
            assert code not in {
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.PERMISSION_DENIED,
            }, role
        else:
            assert code == grpc.StatusCode.PERMISSION_DENIED, role


def _set_context(message: object, path: tuple[str, ...]) -> None:
    """Fills the WorkflowContext at ``path`` (adding an item to a repeated field)."""
    name, rest = path[0], path[1:]
    field = message.DESCRIPTOR.fields_by_name[name]  # type: ignore[attr-defined]
    target = getattr(message, name)
    if field.is_repeated:
        target = target.add()
    if rest:
        _set_context(target, rest)
    else:
        target.workflow_id, target.function_id, target.attempt = "someone-elses", 1, 1


def _acting_as_a_workflow() -> list[tuple[str, object, tuple[str, ...]]]:
    """Every RPC a client token may call whose request can carry a WorkflowContext."""
    return [
        (service, method, path)
        for service, method in _methods()
        if Role.CLIENT in policy.allowed_roles(f"/{service}/{method.name}")  # type: ignore[attr-defined]
        for path in policy.context_paths(method.input_type)  # type: ignore[attr-defined]
    ]


def test_every_way_a_client_could_act_as_a_workflow_is_found() -> None:
    found = {(f"{s}/{m.name}", ".".join(p)) for s, m, p in _acting_as_a_workflow()}  # type: ignore[attr-defined]
    assert found == {
        ("baton.v1.WorkflowService/StartWorkflow", "caller"),
        ("baton.v1.WorkflowService/StartWorkflows", "workflows.caller"),
        ("baton.v1.WorkflowService/AwaitWorkflow", "caller"),
        ("baton.v1.MessageService/Send", "context"),
        ("baton.v1.EventService/GetEvent", "context"),
    }


@pytest.mark.parametrize(
    ("service", "method", "path"),
    _acting_as_a_workflow(),
    ids=lambda v: getattr(v, "name", None) or ".".join(v) if not isinstance(v, str) else "",
)
def test_a_client_token_cannot_act_as_a_running_workflow(
    authed: str, service: str, method: object, path: tuple[str, ...]
) -> None:
    # A WorkflowContext writes into that workflow's journal (and a GetEvent
    # with release_if_longer_than would evict it): a worker's call, not a client's.
    request = GetMessageClass(method.input_type)()  # type: ignore[attr-defined]
    _set_context(request, path)
    code, details = _call_with_details(authed, service, method, TOKENS[Role.CLIENT], request)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details.startswith(path[-1] if len(path) == 1 else f"{path[0]}[0].")
    assert "needs the admin or worker role; this token has client" in details
    for role in (Role.WORKER, Role.ADMIN):
        code = _call(authed, service, method, TOKENS[role], request)
        assert code not in {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


def test_health_and_reflection_need_no_token(authed: str) -> None:
    with grpc.insecure_channel(authed) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_the_sdk_sends_its_token_and_reports_a_bad_one(authed: str) -> None:
    with Client(authed, token="wrong") as client, pytest.raises(Unauthenticated):
        client.get_workflow("x")
    with Client(authed, token=TOKENS[Role.CLIENT]) as client, pytest.raises(NotFound):
        client.get_workflow("x")


def test_a_request_that_does_not_parse_is_authenticated_before_it_is_refused(authed: str) -> None:
    garbled = b"\x0a\x03\xff\xfeA"  # StartWorkflowRequest.workflow_name, not UTF-8
    with grpc.insecure_channel(authed) as channel:
        call = channel.unary_unary("/baton.v1.WorkflowService/StartWorkflow")
        for metadata, code in [
            ((), grpc.StatusCode.UNAUTHENTICATED),
            (
                (("authorization", f"Bearer {TOKENS[Role.CLIENT]}"),),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
        ]:
            with pytest.raises(grpc.RpcError) as caught:
                call(garbled, metadata=metadata, timeout=10)
            assert caught.value.code() == code
