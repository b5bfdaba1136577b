"""stratus-dashboard in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium) against the real identity, image, network and
compute services: sign in, create a network and a router and find both in the topology,
upload an image with the progress bar, launch an instance and watch its status change
without a reload (no compute host here: it goes to ERROR with the scheduler's message),
delete what was made, sign out and find the old session refused.

Screenshots of each page are kept in ``$STRATUS_TEST_ARTIFACTS/dashboard`` (default: the
test's temporary directory), named by step.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard_support import dashboard_stack, make_flavor, make_member

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

webdriver = pytest.importorskip("selenium.webdriver")
By = pytest.importorskip("selenium.webdriver.common.by").By
Select = pytest.importorskip("selenium.webdriver.support.select").Select
WebDriverException = pytest.importorskip("selenium.common.exceptions").WebDriverException


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromium-driver are not installed "
                    "(scripts/install-test-deps.sh installs them)")
    profile = tmp_path_factory.mktemp("zdb-chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--disable-gpu", "--window-size=1280,900", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()  # the driver stops the browser it started


def until(fn: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
        except WebDriverException:  # the page changed under the lookup: look again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what or fn}")
        time.sleep(0.2)


def test_dashboard_in_chromium(browser: Any, tmp_path_factory: pytest.TempPathFactory
                               ) -> None:
    root = tmp_path_factory.mktemp("zdb-browser")
    shots = Path(os.environ.get("STRATUS_TEST_ARTIFACTS", str(root))) / "dashboard"
    shots.mkdir(parents=True, exist_ok=True)
    with dashboard_stack(root) as (st, dash):
        flavor = make_flavor(st.compute.url, st.identity.token(), "zdb-b-tiny")
        user = make_member(st.identity)
        b = browser
        step = [0]

        def shot(name: str) -> None:
            step[0] += 1
            b.save_screenshot(str(shots / f"{step[0]:02d}-{name}.png"))

        def find(css: str) -> Any:
            return b.find_element(By.CSS_SELECTOR, css)

        def no_confirm() -> None:
            b.execute_script("window.confirm = function () { return true; };")

        # Sign in
        b.get(dash.url + "/")
        shot("login")
        find("#id_username").send_keys(user.name)
        find("#id_password").send_keys(user.password)
        find("#loginBtn").click()
        until(lambda: "Overview" in b.find_element(By.TAG_NAME, "h1").text, what="overview")
        assert len(b.find_elements(By.CSS_SELECTOR, ".chart svg")) >= 3
        shot("overview")

        # A network with a subnet, a router on it; both in the topology
        b.get(dash.url + "/project/networks/")
        form = find("#network-form")
        form.find_element(By.NAME, "name").send_keys("zdb-bnet")
        form.find_element(By.NAME, "cidr").send_keys("10.7.0.0/24")
        form.find_element(By.TAG_NAME, "button").click()
        until(lambda: "zdb-bnet" in find("#networks").text, what="the network")
        form = find("#router-form")
        form.find_element(By.NAME, "name").send_keys("zdb-brouter")
        Select(form.find_element(By.NAME, "subnet")).select_by_index(1)
        form.find_element(By.TAG_NAME, "button").click()
        until(lambda: "zdb-brouter" in find("#routers").text, what="the router")
        shot("networks")
        b.get(dash.url + "/project/network_topology/")
        until(lambda: b.execute_script(
            "var i = document.getElementById('topology'); "
            "return i.complete && i.naturalWidth > 0;"), what="the topology drawn")
        svg = b.execute_async_script(
            "var done = arguments[0]; fetch('/project/network_topology/topology.svg')"
            ".then(function (r) { return r.text(); }).then(done);")
        assert "zdb-bnet" in svg and "zdb-brouter" in svg
        shot("topology")

        # Upload an image: the progress bar moves to 100, the image becomes active
        image_file = root / "zdb-image.raw"
        image_file.write_bytes(os.urandom(1024 * 1024) * 24)
        b.get(dash.url + "/project/images/")
        find("#id_image_name").send_keys("zdb-bimage")
        Select(find("#id_disk_format")).select_by_visible_text("raw")
        find("#id_image_file").send_keys(str(image_file))
        find("#upload-submit").click()
        until(lambda: find("#upload-progress").get_attribute("data-max-seen"),
              what="an upload progress event")
        shot("image-uploading")
        until(lambda: "zdb-bimage" in find("#images").text and "active" in find(
            "#images").text, what="the image active")
        shot("images")

        # Launch: the status changes from BUILD to ERROR in the page, without a reload
        b.get(dash.url + "/project/instances/launch")
        find("#id_name").send_keys("zdb-bserver")
        Select(find("#id_image")).select_by_visible_text("zdb-bimage")
        Select(find("#id_flavor")).select_by_value(flavor)
        Select(find("#id_networks")).select_by_visible_text("zdb-bnet")
        find("#launch-submit").click()
        until(lambda: "zdb-bserver" in find("#instances").text, what="the instance row")
        b.execute_script("window.zdbNoReload = true;")
        until(lambda: "ERROR" in find("#instances .status").text, what="status ERROR")
        assert b.execute_script("return window.zdbNoReload === true;")
        assert "No valid host" in find("#instances").text
        shot("instances")
        find("#instances a.name").click()
        until(lambda: "No valid host" in find(".facts").text, what="the fault")
        shot("instance")

        # Delete what was made
        no_confirm()
        find("button[value=delete]").click()
        until(lambda: "zdb-bserver" not in find("#instances").text, what="instance gone")
        b.get(dash.url + "/project/images/")
        no_confirm()
        find("#images button.danger").click()
        until(lambda: "zdb-bimage" not in find("#images").text, what="image gone")
        b.get(dash.url + "/project/networks/")
        no_confirm()
        find("#routers button.danger").click()
        until(lambda: "zdb-brouter" not in find("#routers").text, what="router gone")
        no_confirm()
        find("#networks button.danger").click()
        until(lambda: "zdb-bnet" not in find("#networks").text, what="network gone")

        # Sign out; the old session cookie is refused afterwards
        old = b.get_cookie("stratus_session")
        find("#logout").click()
        until(lambda: b.find_elements(By.ID, "id_username"), what="the login page")
        shot("logged-out")
        b.add_cookie({"name": "stratus_session", "value": old["value"], "path": "/"})
        b.get(dash.url + "/project/instances/")
        assert b.find_elements(By.ID, "id_username")
        assert "zdb-bserver" not in b.page_source
    assert len(list(shots.glob("*.png"))) == step[0]
