"""How this process runs: in CI or not, on a terminal or not.

What consent and a report read from the process itself rather than from files, kept apart from
``facts`` (the machine's facts, which only a report needs): a warm run reads these at its first
watched import, and must not pay for the rest. How the interpreter was started is captured at
activation by the pipeline (``pipeline.describe_interpreter``), which is all the exit reads.
"""

import os
import sys

# Vendor table in the spirit of watson/ci-info: the variable that proves the vendor, and its name.
# Checked in order; the first match names the vendor.
_CI_VENDORS = (
    ("GITHUB_ACTIONS", "github_actions"),
    ("GITLAB_CI", "gitlab"),
    ("CIRCLECI", "circleci"),
    ("TRAVIS", "travis"),
    ("JENKINS_URL", "jenkins"),
    ("BUILDKITE", "buildkite"),
    ("TF_BUILD", "azure_pipelines"),
    ("APPVEYOR", "appveyor"),
    ("BITBUCKET_BUILD_NUMBER", "bitbucket"),
    ("TEAMCITY_VERSION", "teamcity"),
    ("DRONE", "drone"),
    ("CODEBUILD_BUILD_ARN", "aws_codebuild"),
    ("BUILDER_OUTPUT", "google_cloud_build"),
    ("SEMAPHORE", "semaphore"),
    ("NETLIFY", "netlify"),
    ("VERCEL", "vercel"),
    ("CF_PAGES", "cloudflare_pages"),
    ("HEROKU_TEST_RUN_ID", "heroku"),
    ("WOODPECKER_CI", "woodpecker"),
    ("CIRRUS_CI", "cirrus"),
    ("BITRISE_IO", "bitrise"),
    ("SCREWDRIVER", "screwdriver"),
    ("HUDSON_URL", "hudson"),
    ("GO_PIPELINE_LABEL", "gocd"),
)
# Generic variables that many CI systems set; ci-info's list.
_CI_GENERIC = ("CI", "CONTINUOUS_INTEGRATION", "BUILD_ID", "BUILD_NUMBER", "RUN_ID")


def ci_vendor(environ=None):
    """(is_ci, vendor_or_None) from the environment; ``CI=false`` (or 0/no/off) means not CI."""
    environ = os.environ if environ is None else environ
    ci = environ.get("CI")
    if ci is not None and ci.strip().lower() in ("false", "0", "no", "off"):
        return False, None
    for variable, vendor in _CI_VENDORS:
        if environ.get(variable):
            return True, vendor
    if any(environ.get(variable) for variable in _CI_GENERIC):
        return True, None
    return False, None


def interactive():
    """Whether stderr is a terminal: the first-run notice is shown (and waited for) only there."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
