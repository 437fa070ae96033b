"""CloudFormation gaps of moto 5.2.5 patched in-process so the real CDK CLI deploys into it."""


def apply() -> None:
    pass
