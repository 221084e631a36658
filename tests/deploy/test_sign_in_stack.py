"""Signed-in users on AWS (SPEC 5.3): the gateway stack verifying an existing issuer or creating a
Cognito user pool with a public PKCE client and a hosted domain; the frontend usage-plan key
whose value only Secrets Manager and the authorizer know; and the custom resource that adds the
chat page to the client's URLs, run against moto's Cognito over HTTP."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any, ClassVar

import boto3
import pytest

from llm_gateway.budgets.local import start_store_server
from llm_gateway.deploy import client_urls
from llm_gateway.deploy.mappings import GATEWAY_BLOCKS, render_template
from tests.deploy.conftest import TEMPLATE, load_cfn, transformed
from tests.deploy.test_sam_transform import resources

COGNITO = {"CreateUserPool": "true", "FrontendCallbackUrls": "https://app.example.com/cb"}
ISSUER = {
    "JwtIssuer": "https://login.example.com/tenant/v2.0",
    "JwtAudience": "api://gateway,other",
    "JwtClientId": "chat-client",
}
CHAT_PAGE = "https://${GatewayApi}.execute-api.us-east-1.amazonaws.com/dev/ui/"
COGNITO_ISSUER = {"Fn::Sub": "https://cognito-idp.us-east-1.amazonaws.com/${UserPool}"}
SIGN_IN_KINDS = {
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolDomain",
    "AWS::SecretsManager::Secret",
    "AWS::ApiGateway::ApiKey",
    "AWS::ApiGateway::UsagePlanKey",
    "Custom::CognitoClientUrls",
}


def env(template: dict[str, Any], name: str = "GatewayFunction") -> dict[str, Any]:
    props = template["Resources"][name]["Properties"]
    return dict(props.get("Environment", {}).get("Variables", {}))


def authorizer_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"]["AuthorizerFunctionRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ]
    return [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def kinds(template: dict[str, Any]) -> set[str]:
    return {body["Type"] for body in template["Resources"].values()}


def test_without_sign_in_nothing_is_created_and_nothing_is_verified(stream_template):
    assert not kinds(stream_template) & SIGN_IN_KINDS
    assert not {k for k in env(stream_template) if k.startswith("GATEWAY_JWT")}
    assert env(stream_template, "AuthorizerFunction") == {}
    assert authorizer_statements(stream_template) == []
    plans = resources(stream_template, "AWS::ApiGateway::UsagePlan")
    assert set(plans) == {"BasicUsagePlan", "ProUsagePlan"}


def frontend_key_is_metered_and_secret(template: dict[str, Any]) -> None:
    """One frontend key in its own plan; its value is generated into Secrets Manager, given to
    API Gateway by dynamic reference and readable by the authorizer alone."""
    (secret,) = resources(template, "AWS::SecretsManager::Secret")
    generated = template["Resources"][secret]["Properties"]["GenerateSecretString"]
    assert generated["ExcludePunctuation"] is True and 20 <= generated["PasswordLength"] <= 128
    assert "SecretString" not in template["Resources"][secret]["Properties"]
    key = template["Resources"]["FrontendApiKey"]["Properties"]
    assert key["Value"] == {"Fn::Sub": "{{resolve:secretsmanager:${FrontendKeySecret}}}"}
    assert key["Enabled"] is True
    plan = template["Resources"]["FrontendUsagePlan"]["Properties"]
    assert plan["UsagePlanName"] == "llm-gateway-test-frontend"
    assert plan["Throttle"] == {"RateLimit": 20, "BurstLimit": 40}
    assert plan["Quota"] == {"Limit": 1000000, "Period": "MONTH"}
    link = template["Resources"]["FrontendUsagePlanKey"]["Properties"]
    assert link == {
        "KeyId": {"Ref": "FrontendApiKey"},
        "KeyType": "API_KEY",
        "UsagePlanId": {"Ref": "FrontendUsagePlan"},
    }
    authorizer = env(template, "AuthorizerFunction")
    assert authorizer["GATEWAY_FRONTEND_KEY_SECRET"] == {"Ref": secret}  # the ARN
    assert authorizer_statements(template) == [
        {
            "Sid": "ReadTheFrontendKey",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": {"Ref": secret},
        }
    ]
    # the key never reaches the gateway function
    assert "GATEWAY_FRONTEND_KEY_SECRET" not in env(template)
    assert template["Outputs"]["FrontendUsagePlanId"]["Value"] == {"Ref": "FrontendUsagePlan"}


@pytest.mark.parametrize("mode", ["stream", "buffered"])
def test_create_user_pool(mode):
    template = transformed(StreamingMode=mode, **COGNITO)
    assert kinds(template) >= SIGN_IN_KINDS
    pool = template["Resources"]["UserPool"]
    assert pool["DeletionPolicy"] == "Retain"  # it holds the users
    assert pool["Properties"]["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    client = template["Resources"]["UserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False  # public: a browser keeps no secret
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthFlows"] == ["code"]  # never implicit
    assert client["AllowedOAuthScopes"] == ["openid", "email", "profile"]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert client["CallbackURLs"] == client["LogoutURLs"] == ["https://app.example.com/cb"]
    domain = template["Resources"]["UserPoolDomain"]["Properties"]
    assert domain["ManagedLoginVersion"] == 1 and domain["UserPoolId"] == {"Ref": "UserPool"}
    # the chat page (and the frontends) as sign-in and sign-out URLs, once the API exists
    urls = template["Resources"]["ChatPageSignInUrls"]["Properties"]
    assert urls["Urls"] == {
        "Fn::Split": [
            ",",
            {
                "Fn::Sub": [
                    "${ChatPage},https://app.example.com/cb",
                    {"ChatPage": {"Fn::Sub": CHAT_PAGE}},
                ]
            },
        ]
    }
    assert urls["ClientId"] == {"Ref": "UserPoolClient"}
    assert urls["ServiceToken"] == {"Fn::GetAtt": ["ClientUrlsFunction", "Arn"]}
    role = template["Resources"]["ClientUrlsFunctionRole"]["Properties"]
    (statement,) = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statement["Action"] == [
        "cognito-idp:DescribeUserPoolClient",
        "cognito-idp:UpdateUserPoolClient",
    ]
    assert statement["Resource"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
    # the app and the authorizer verify the pool's tokens; the chat page signs in with the client
    app = env(template)
    assert app["GATEWAY_JWT_ISSUER"] == COGNITO_ISSUER
    assert app["GATEWAY_JWT_AUDIENCE"] == app["GATEWAY_JWT_CLIENT_ID"] == {"Ref": "UserPoolClient"}
    authorizer = env(template, "AuthorizerFunction")
    assert authorizer["GATEWAY_JWT_ISSUER"] == COGNITO_ISSUER
    assert authorizer["GATEWAY_JWT_AUDIENCE"] == {"Ref": "UserPoolClient"}
    assert authorizer["GATEWAY_JWT_CLIENT_ID"] == {"Ref": "UserPoolClient"}
    frontend_key_is_metered_and_secret(template)
    outputs = template["Outputs"]
    assert outputs["UserPoolId"]["Value"] == {"Ref": "UserPool"}
    assert outputs["UserPoolClientId"]["Value"] == {"Ref": "UserPoolClient"}
    assert outputs["SignInDomainUrl"]["Value"] == {
        "Fn::Sub": "https://${UserPoolDomain}.auth.us-east-1.amazoncognito.com"
    }


def test_user_pool_without_frontends_and_with_self_sign_up():
    template = transformed(CreateUserPool="true", AllowSelfSignUp="true")
    client = template["Resources"]["UserPoolClient"]["Properties"]
    placeholder = [{"Fn::Sub": "https://${UserPoolDomain}.auth.us-east-1.amazoncognito.com/"}]
    assert client["CallbackURLs"] == placeholder  # the pool's own pages, until the chat page
    urls = template["Resources"]["ChatPageSignInUrls"]["Properties"]["Urls"]
    assert urls == [{"Fn::Sub": CHAT_PAGE}]
    config = template["Resources"]["UserPool"]["Properties"]["AdminCreateUserConfig"]
    assert config == {"AllowAdminCreateUserOnly": False}
    domain = template["Resources"]["UserPoolDomain"]["Properties"]["Domain"]
    assert domain == {
        "Fn::Join": [
            "-",
            ["llm-gateway", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}],
        ]
    }
    named = transformed(CreateUserPool="true", UserPoolDomainPrefix="acme-chat")
    assert named["Resources"]["UserPoolDomain"]["Properties"]["Domain"] == "acme-chat"


def test_an_existing_issuer():
    template = transformed(**ISSUER)
    assert not kinds(template) & {
        "AWS::Cognito::UserPool",
        "AWS::Cognito::UserPoolClient",
        "Custom::CognitoClientUrls",
    }
    app = env(template)
    assert app["GATEWAY_JWT_ISSUER"] == "https://login.example.com/tenant/v2.0"
    assert app["GATEWAY_JWT_AUDIENCE"] == "api://gateway,other"  # comma-separated, as given
    assert app["GATEWAY_JWT_CLIENT_ID"] == "chat-client"
    authorizer = env(template, "AuthorizerFunction")
    assert authorizer["GATEWAY_JWT_ISSUER"] == app["GATEWAY_JWT_ISSUER"]
    assert authorizer["GATEWAY_JWT_AUDIENCE"] == app["GATEWAY_JWT_AUDIENCE"]
    assert authorizer["GATEWAY_JWT_CLIENT_ID"] == "chat-client"  # its tokens pass both checks
    frontend_key_is_metered_and_secret(template)
    assert template["Outputs"]["TokenIssuer"]["Value"] == "https://login.example.com/tenant/v2.0"
    without_client = transformed(JwtIssuer=ISSUER["JwtIssuer"], JwtAudience="a")
    assert "GATEWAY_JWT_CLIENT_ID" not in env(without_client)
    assert "GATEWAY_JWT_CLIENT_ID" not in env(without_client, "AuthorizerFunction")


def test_the_authorizer_ships_with_its_own_dependencies(stream_template):
    props = stream_template["Resources"]["AuthorizerFunction"]["Properties"]
    # authorizer/, which sam build packages with its own requirements.txt (test_build.py)
    assert load_cfn(TEMPLATE)["Resources"]["AuthorizerFunction"]["Properties"]["CodeUri"] == (
        "authorizer/"
    )
    assert props["Timeout"] >= 10  # room for a JWKS fetch on a cold start


def client_revision() -> str:
    props = load_cfn(TEMPLATE)["Resources"]["UserPoolClient"]["Properties"]
    return hashlib.sha256(json.dumps(props, sort_keys=True).encode()).hexdigest()[:12]


def test_a_change_to_the_client_runs_the_url_update_again():
    """A stack update of UserPoolClient resets its URLs to the template's; ClientRevision,
    a digest of the client's properties, changes with it and re-runs ChatPageSignInUrls."""
    urls = load_cfn(TEMPLATE)["Resources"]["ChatPageSignInUrls"]["Properties"]
    assert urls["ClientRevision"] == client_revision(), (
        f"UserPoolClient changed: set ChatPageSignInUrls' ClientRevision to {client_revision()}"
    )


def test_the_inline_code_is_client_urls_py():
    text = TEMPLATE.read_text(encoding="utf-8")
    assert render_template(text, GATEWAY_BLOCKS) == text, "run scripts/gen_image_mappings.py"
    code = load_cfn(TEMPLATE)["Resources"]["ClientUrlsFunction"]["Properties"]["InlineCode"]
    assert len(code) < 4096  # Lambda's limit for inline (ZipFile) code
    assert "def handler(" in code


# ---------------------------------------------------------- the custom resource, on moto ----


class _Responses(http.server.BaseHTTPRequestHandler):
    """CloudFormation's presigned response URL: records what the function PUTs."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"body": json.loads(body), "path": self.path})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def response_url() -> Iterator[str]:
    _Responses.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Responses)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/response?signature=x"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def aws_url() -> Iterator[str]:
    url, stop = start_store_server()  # moto's server answers Cognito too
    yield url
    stop()


@pytest.fixture
def cognito(aws_url: str) -> Any:
    urllib.request.urlopen(urllib.request.Request(f"{aws_url}/moto-api/reset", method="POST"))
    return boto3.client(
        "cognito-idp",
        region_name="us-east-1",
        endpoint_url=aws_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def event(kind: str, response_url: str, pool: str, client: str, urls: list[str]) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": response_url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/id",
        "RequestId": "req-1",
        "LogicalResourceId": "ChatPageSignInUrls",
        "ResourceProperties": {"UserPoolId": pool, "ClientId": client, "Urls": urls},
    }


def test_the_chat_page_is_added_and_the_clients_settings_are_kept(cognito, response_url):
    pool = cognito.create_user_pool(PoolName="users")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool,
        ClientName="chat",
        GenerateSecret=False,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"],
        SupportedIdentityProviders=["COGNITO"],
        CallbackURLs=["https://placeholder.example.com/"],
        LogoutURLs=["https://placeholder.example.com/"],
        AccessTokenValidity=60,
        TokenValidityUnits={"AccessToken": "minutes"},
    )["UserPoolClient"]["ClientId"]
    urls = ["https://abc.execute-api.us-east-1.amazonaws.com/dev/ui/", "https://app.example.com/cb"]
    answer = client_urls.handler(event("Create", response_url, pool, client, urls), None, cognito)
    assert answer["Status"] == "SUCCESS"
    after = cognito.describe_user_pool_client(UserPoolId=pool, ClientId=client)["UserPoolClient"]
    assert after["CallbackURLs"] == after["LogoutURLs"] == urls
    assert after["AllowedOAuthFlows"] == ["code"]
    assert after["AllowedOAuthScopes"] == ["openid", "email", "profile"]
    assert after["AllowedOAuthFlowsUserPoolClient"] is True
    assert after["AccessTokenValidity"] == 60
    assert "ClientSecret" not in after
    (put,) = _Responses.received
    assert put["path"] == "/response?signature=x"
    assert put["body"] == {
        "Status": "SUCCESS",
        "Reason": "done",
        "PhysicalResourceId": f"{client}-urls",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/id",
        "RequestId": "req-1",
        "LogicalResourceId": "ChatPageSignInUrls",
    }


def test_a_failure_is_reported_to_cloudformation(cognito, response_url):
    pool = cognito.create_user_pool(PoolName="users")["UserPool"]["Id"]
    answer = client_urls.handler(
        event("Update", response_url, pool, "no-such-client", ["https://x.example.com/"]),
        None,
        cognito,
    )
    assert answer["Status"] == "FAILED" and "ResourceNotFoundException" in answer["Reason"]
    assert [r["body"]["Status"] for r in _Responses.received] == ["FAILED"]


def test_delete_changes_nothing(cognito, response_url):
    class NoCalls:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"Delete called {name}")

    answer = client_urls.handler(
        event("Delete", response_url, "pool", "client", ["https://x.example.com/"]), None, NoCalls()
    )
    assert answer["Status"] == "SUCCESS"
    assert len(_Responses.received) == 1
