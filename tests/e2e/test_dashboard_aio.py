"""The dashboard and the VNC consoles on the deployed all-in-one cloud (issue 15): the boot
module's session cloud (the ``cloud`` fixture of tests/e2e/conftest.py; these tests are
marked ``e2e_boot_cloud`` and run before its bystander guest boots), which site.yml gave
stratus-dashboard and stratus-novncproxy on ports of its own.

- ``openstack console url show`` answers a noVNC URL of the deployed proxy whose websocket
  carries the guest's RFB handshake, once: the same token is refused afterwards;
- in headless Chromium (Debian's chromium + chromium-driver, selenium): sign in as the
  cloud's admin, create a network and a router and find both in the topology, upload an
  image with the progress bar moving, make a container and upload an object into a
  pseudo-folder from the browser (progress bar, read back, deleted), launch an instance of
  the tiny image and watch it reach ACTIVE without a reload, read its console log, open
  its VNC console and find the guest's screen drawn (the noVNC canvas's pixels vary),
  delete what was made, sign out and find the old session refused.

Screenshots of every step are kept under the test's temporary directory (printed).
Everything made is named ``zcn-*`` and deleted by the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import yaml
from test_boot_aio import READY, REPO, Cloud, wait_for

# 1800 s: run alone, the first test also pays for the session cloud's deploy and its wait
# for the e2e playbook lock (the tests themselves take about 20 s and 40 s here)
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.e2e_boot_cloud,
              pytest.mark.timeout(1800)]

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
TINY = REPO / "tests" / "images" / "cache" / "tiny.qcow2"


def until(fn: Callable[[], Any], timeout: float = 120.0, what: str = "") -> Any:
    from selenium.common.exceptions import WebDriverException

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
        time.sleep(0.3)


def nss_home(root: Path, ca: str | None) -> dict[str, str]:
    """The environment of a Chromium that trusts the cloud's CA: a HOME whose NSS db
    (~/.pki/nssdb, where Chromium on Linux reads its trust) holds it — certificate checks
    stay on (no --ignore-certificate-errors). A plain-http cloud: the environment as is."""
    env = dict(os.environ)
    if ca is None:
        return env
    if shutil.which("certutil") is None:
        pytest.fail("certutil is not installed (scripts/install-test-deps.sh installs "
                    "libnss3-tools)")
    db = root / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True,
                   capture_output=True, timeout=60)
    subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-n", "zcn-cloud-ca", "-t", "C,,",
                    "-i", ca], check=True, capture_output=True, timeout=60)
    env["HOME"] = str(root)
    return env


@pytest.fixture(scope="module")
def browser(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromium-driver are not installed "
                    "(scripts/install-test-deps.sh installs them)")
    from selenium import webdriver

    env = nss_home(tmp_path_factory.mktemp("zcn-home"), cloud.cacert)
    profile = tmp_path_factory.mktemp("zcn-chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--disable-gpu", "--window-size=1280,1000", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(
        executable_path=CHROMEDRIVER, env=env))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()  # the driver stops the browser it started


def tiny_image(cloud: Cloud) -> tuple[str, bool]:
    """The tiny image's name (the boot module's, or one made here: True)."""
    images = cloud.openstack("image", "list", "--name", "sdep-tiny")
    if images:
        return "sdep-tiny", False
    assert TINY.exists(), "tests/images/build-tiny.sh builds it (the cloud fixture runs it)"
    cloud.openstack("image", "create", "--disk-format", "qcow2", "--container-format", "bare",
                    "--file", str(TINY), "zcn-tiny")
    return "zcn-tiny", True


def open_console(url: str, ca: str | None = None) -> bytes:
    """The first bytes the proxy relays for a console URL (wss, verified with ``ca``,
    for an https page); raises when it refuses."""
    import websocket

    page = urlparse(url)
    path = unquote(parse_qs(page.query)["path"][0])
    scheme = "wss" if page.scheme == "https" else "ws"
    ws = websocket.create_connection(f"{scheme}://{page.netloc}/{path}", subprotocols=["binary"],
                                     sslopt={"ca_certs": ca} if ca else None,
                                     timeout=30)
    try:
        data = ws.recv()
        return data if isinstance(data, bytes) else data.encode()
    finally:
        ws.close()


def compute_host_up(cloud: Cloud) -> None:
    """Alone (-k) this module may run right after the deploy: the compute host must have
    reported before a server can be placed."""
    wait_for("the compute host to report", lambda: [
        h for h in cloud.api("GET", "compute", "/os-hypervisors/detail").json().get(
            "hypervisors", []) if h.get("state") == "up"], 180, 2)


def test_console_url_show_opens_the_guest_display_once(cloud: Cloud) -> None:
    compute_host_up(cloud)
    image, made = tiny_image(cloud)
    net = cloud.openstack("network", "create", "zcn-cnet")
    cloud.openstack("subnet", "create", "--network", net["id"], "--subnet-range",
                    "10.91.0.0/24", "zcn-csub")
    server = cloud.openstack("server", "create", "--image", image, "--flavor", "m1.tiny",
                             "--network", net["id"], "--wait", "zcn-console", timeout=400)
    try:
        assert server["status"] == "ACTIVE", server
        got = wait_for("a console URL", lambda: (lambda d: d if d.returncode == 0 else None)(
            cloud.openstack("console", "url", "show", "--novnc", server["id"], "-f", "json",
                            fmt=False, check=False)), 120, 3)
        url = json.loads(got.stdout)["url"]
        assert url.startswith(cloud.url("novncproxy", "/vnc_lite.html?"))
        if cloud.cacert:  # TLS on (the default): https only, wss with the cloud's CA
            assert url.startswith("https://")
        assert open_console(url, cloud.cacert).startswith(b"RFB 003.")
        import websocket

        with pytest.raises((websocket.WebSocketException, OSError)):
            open_console(url, cloud.cacert)  # spent by its first use
        conf = (cloud.config_dir / "stratus.conf").read_text()
        assert "\n[novncproxy]\n" in conf
        assert re.search(r"^vnc_enabled = true$", conf, re.MULTILINE)
    finally:
        cloud.openstack("server", "delete", "--wait", server["id"], fmt=False, timeout=300)
        cloud.openstack("subnet", "delete", "zcn-csub", fmt=False)
        cloud.openstack("network", "delete", net["id"], fmt=False)
        if made:
            cloud.openstack("image", "delete", image, fmt=False)


def test_dashboard_in_chromium_on_the_deployed_cloud(
        cloud: Cloud, browser: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    root = tmp_path_factory.mktemp("zcn-dashboard")
    shots = root / "screenshots"
    shots.mkdir()
    print(f"dashboard screenshots: {shots}")
    compute_host_up(cloud)
    image, made = tiny_image(cloud)
    auth = yaml.safe_load(cloud.clouds_yaml.read_text())["clouds"]["stratus"]["auth"]
    url = cloud.url("dashboard")
    b = browser
    step = [0]

    def shot(name: str) -> None:
        step[0] += 1
        b.save_screenshot(str(shots / f"{step[0]:02d}-{name}.png"))

    def find(css: str) -> Any:
        return b.find_element(By.CSS_SELECTOR, css)

    def no_confirm() -> None:
        b.execute_script("window.confirm = function () { return true; };")

    def choose(select_css: str, test: Callable[[str], bool], within: Any = None) -> None:
        """Pick the option of a <select> whose text passes ``test``."""
        el = (within or b).find_element(By.CSS_SELECTOR, select_css)
        Select(el).select_by_visible_text(next(o.text for o in Select(el).options
                                               if test(o.text.strip())))

    def row(table: str, name: str) -> Any:
        """The row of ``#table`` whose name cell is ``name`` (None while there is none)."""
        for tr in b.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr"):
            cells = tr.find_elements(By.CSS_SELECTOR, ".name")
            if cells and cells[0].text.strip() == name:
                return tr
        return None

    try:
        # Sign in (the admin of clouds.yaml is a member of its project)
        b.get(url + "/")
        shot("login")
        find("#id_username").send_keys(auth["username"])
        find("#id_password").send_keys(auth["password"])
        find("#loginBtn").click()
        until(lambda: "Overview" in b.find_element(By.TAG_NAME, "h1").text, what="overview")
        shot("overview")

        # A network with a subnet and a router on it: both in the topology
        b.get(url + "/project/networks/")
        form = find("#network-form")
        form.find_element(By.NAME, "name").send_keys("zcn-net")
        form.find_element(By.NAME, "cidr").send_keys("10.92.0.0/24")
        form.find_element(By.TAG_NAME, "button").click()
        until(lambda: row("networks", "zcn-net"), what="the network")
        form = find("#router-form")
        form.find_element(By.NAME, "name").send_keys("zcn-router")
        choose("select[name=subnet]", lambda t: t.endswith("10.92.0.0/24"), within=form)
        form.find_element(By.TAG_NAME, "button").click()
        until(lambda: row("routers", "zcn-router"), what="the router")
        shot("networks")
        b.get(url + "/project/network_topology/")
        until(lambda: b.execute_script(
            "var i = document.getElementById('topology'); "
            "return i.complete && i.naturalWidth > 0;"), what="the topology drawn")
        svg = b.execute_async_script(
            "var done = arguments[0]; fetch('/project/network_topology/topology.svg')"
            ".then(function (r) { return r.text(); }).then(done);")
        assert "zcn-net" in svg and "zcn-router" in svg
        shot("topology")

        # Upload an image: the progress bar moves, the image becomes active
        upload = root / "zcn-image.raw"
        upload.write_bytes(bytes(range(256)) * 4096 * 24)  # 24 MiB
        b.get(url + "/project/images/")
        find("#id_image_name").send_keys("zcn-upload")
        Select(find("#id_disk_format")).select_by_visible_text("raw")
        find("#id_image_file").send_keys(str(upload))
        find("#upload-submit").click()
        until(lambda: find("#upload-progress").get_attribute("data-max-seen"),
              what="an upload progress event")
        shot("image-uploading")
        until(lambda: row("images", "zcn-upload") and row("images", "zcn-upload").find_element(
            By.CSS_SELECTOR, ".status").text.strip() == "active", what="the image active")
        shot("images")

        # Object storage (site.yml deploys it): a container, an object uploaded from the
        # browser into a pseudo-folder with the progress bar, read back, then deleted
        b.get(url + "/project/containers/")
        form = find("#container-form")
        form.find_element(By.NAME, "name").send_keys("zcn-box")
        form.find_element(By.TAG_NAME, "button").click()
        until(lambda: row("containers", "zcn-box"), what="the container")
        row("containers", "zcn-box").find_element(By.CSS_SELECTOR, "a").click()
        until(lambda: b.find_elements(By.ID, "object-upload"), what="the container's page")
        content = b"zcn object " * 300_000  # 3.3 MB: the upload reports progress
        payload = root / "zcn-object.txt"
        payload.write_bytes(content)
        find("#id_object_name").send_keys("docs/zcn-object.txt")
        find("#id_object_file").send_keys(str(payload))
        find("#object-upload-submit").click()
        # read in one script: the page reloads half a second after the upload ends
        bar = until(lambda: b.execute_script(
            "var s = document.getElementById('object-state');"
            "return s && s.textContent.indexOf('Uploaded') >= 0"
            " && document.getElementById('object-progress').value;"),
            what="the object uploaded")
        assert bar == 100
        until(lambda: row("objects", "docs/"), what="the pseudo-folder docs/")
        shot("container")
        row("objects", "docs/").find_element(By.CSS_SELECTOR, "a").click()
        until(lambda: row("objects", "zcn-object.txt"), what="the object in docs/")
        href = row("objects", "zcn-object.txt").find_element(
            By.CSS_SELECTOR, "a").get_attribute("href")
        size = b.execute_async_script(
            "var done = arguments[1]; fetch(arguments[0]).then(function (r) {"
            " return r.arrayBuffer(); }).then(function (a) { done(a.byteLength); });", href)
        assert size == len(content)
        no_confirm()
        row("objects", "zcn-object.txt").find_element(By.CSS_SELECTOR, "button.danger").click()
        until(lambda: find("#objects") and row("objects", "zcn-object.txt") is None,
              what="the object gone")
        b.get(url + "/project/containers/")
        no_confirm()
        row("containers", "zcn-box").find_element(By.CSS_SELECTOR, "button.danger").click()
        until(lambda: find("#containers") and row("containers", "zcn-box") is None,
              what="the container gone")
        shot("containers")

        # Launch the tiny image: BUILD turns ACTIVE in the page, without a reload
        b.get(url + "/project/instances/launch")
        find("#id_name").send_keys("zcn-vm")
        choose("#id_image", lambda t: t == image)
        choose("#id_flavor", lambda t: t.startswith("m1.tiny "))
        choose("#id_networks", lambda t: t == "zcn-net")
        find("#launch-submit").click()
        until(lambda: row("instances", "zcn-vm"), what="the instance row")
        b.execute_script("window.zcnNoReload = true;")
        until(lambda: row("instances", "zcn-vm").find_element(
            By.CSS_SELECTOR, ".status").text.strip() == "ACTIVE", timeout=300,
            what="status ACTIVE in the list")
        assert b.execute_script("return window.zcnNoReload === true;"), "the page reloaded"
        shot("instances")

        # Its console log, then its VNC console drawing the guest's screen
        row("instances", "zcn-vm").find_element(By.CSS_SELECTOR, "a.name").click()
        until(lambda: "zcn-vm" in b.find_element(By.TAG_NAME, "h1").text, what="its page")
        instance_page = b.current_url

        def console_log() -> bool:
            b.get(instance_page)
            return READY in find("#console-log").text

        until(console_log, timeout=240, what=f"{READY!r} in the console log")
        shot("instance-console-log")
        find("#open-console").click()
        frame = until(lambda: find("#vnc-console"), what="the console frame")
        b.switch_to.frame(frame)
        until(lambda: "Connected" in find("#status").text, timeout=60,
              what="noVNC connected")
        variance = until(lambda: b.execute_script(
            "var c = document.querySelector('#screen canvas');"
            "if (!c || !c.width) return 0;"
            "var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "var n = 0, s = 0, q = 0;"
            "for (var i = 0; i < d.length; i += 16) {"
            "  var v = d[i] + d[i + 1] + d[i + 2]; n++; s += v; q += v * v; }"
            "var m = s / n; return q / n - m * m;"), timeout=60, what="a drawn screen")
        b.switch_to.default_content()
        shot("vnc-console")
        print(f"VNC console: pixel variance {variance:.1f}")
        assert variance > 10

        # Delete what was made (instance, image, router, network)
        b.get(instance_page)
        no_confirm()
        find("button[value=delete]").click()
        until(lambda: find("#instances") and row("instances", "zcn-vm") is None,
              timeout=180, what="the instance gone")
        for page, table, name in (("images", "images", "zcn-upload"),
                                  ("networks", "routers", "zcn-router"),
                                  ("networks", "networks", "zcn-net")):
            b.get(f"{url}/project/{page}/")
            tr = until(lambda: row(table, name), what=f"the {name} row")  # noqa: B023
            no_confirm()
            tr.find_element(By.CSS_SELECTOR, "button.danger").click()
            until(lambda: find(f"#{table}") and row(table, name) is None,  # noqa: B023
                  timeout=120, what=f"{name} gone")
        shot("cleaned")

        # Sign out; the old session cookie is refused afterwards
        old = b.get_cookie("stratus_session")
        assert old is not None
        # over https (TLS on, the default) the session cookie is Secure: never sent over http
        assert old.get("secure") is url.startswith("https://"), old
        find("#logout").click()
        until(lambda: b.find_elements(By.ID, "id_username"), what="the login page")
        shot("logged-out")
        b.add_cookie({"name": "stratus_session", "value": old["value"], "path": "/",
                      "secure": bool(old.get("secure"))})
        b.get(url + "/project/instances/")
        assert b.find_elements(By.ID, "id_username"), "the old session still works"
    finally:
        leftovers(cloud, made and image)
    assert len(list(shots.glob("*.png"))) == step[0]


def leftovers(cloud: Cloud, image: str | bool) -> None:
    """Whatever a failed run left of this module's objects, removed through the CLI."""
    for kind, name in (("server", "zcn-vm"), ("image", "zcn-upload")):
        for item in cloud.openstack(kind, "list", "--name", name) or []:
            cloud.openstack(kind, "delete", item["ID"], fmt=False, check=False, timeout=300)
    for router in cloud.openstack("router", "list", "--name", "zcn-router") or []:
        info = cloud.openstack("router", "show", router["ID"])
        for iface in info.get("interfaces_info") or []:
            cloud.openstack("router", "remove", "port", router["ID"], iface["port_id"],
                            fmt=False, check=False)
        cloud.openstack("router", "delete", router["ID"], fmt=False, check=False)
    for net in cloud.openstack("network", "list", "--name", "zcn-net") or []:
        cloud.openstack("network", "delete", net["ID"], fmt=False, check=False)
    if image:
        cloud.openstack("image", "delete", str(image), fmt=False, check=False)
    for container in cloud.openstack("container", "list", "--prefix", "zcn-box") or []:
        cloud.openstack("container", "delete", "--recursive", container["Name"], fmt=False,
                        check=False)
