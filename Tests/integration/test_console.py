"""The manager's web console in a real browser: Debian's headless chromium driven through
chromedriver (selenium), against a running cluster with data in it. Screenshots of each
view are kept for CI under $DF_ARTIFACTS (or a temporary directory) and their paths printed."""

import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import binary, missing, run

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))
from local_cluster import LocalCluster  # noqa: E402
from manager_proc import ROOT_PASSWORD  # noqa: E402

WIDTH, HEIGHT = 1280, 1000


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium not installed in the venv (pip install -r requirements.txt)")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        missing("chromium and chromium-driver not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WIDTH},{HEIGHT}", "--lang=en-US"):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(driver), options=options)
    d.set_page_load_timeout(30)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster(tmp_path_factory.mktemp("console"))
    res = c.dfget(c.root / "first.bin", "--quiet")
    assert res.returncode == 0, res.stderr
    yield c
    c.stop()


@pytest.fixture(scope="module")
def shots():
    root = Path(os.environ.get("DF_ARTIFACTS") or tempfile.mkdtemp(prefix="dragonfly-artifacts-")) / "console"
    root.mkdir(parents=True, exist_ok=True)
    return root


def wait(driver, predicate, timeout=15, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate(driver)
            if value:
                return value
        except Exception as err:  # the page may be mid-render
            last = err
        time.sleep(0.1)
    error = driver.find_elements("id", "error")
    pytest.fail(f"timed out waiting for {what}; last error {last!r}; page error box: "
                f"{error[0].text if error else ''}\n{driver.find_element('tag name', 'body').text[:2000]}")


def texts(driver, css):
    return [e.text for e in driver.find_elements("css selector", css)]


def screenshot(driver, shots, name, capsys):
    path = shots / f"{name}.png"
    assert driver.save_screenshot(str(path))
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= WIDTH * 0.9 and height >= 300, (width, height)
    assert len(png) > 8000, "the screenshot is not a blank page"
    with capsys.disabled():
        print(f"\nconsole screenshot: {path}")
    return path


def test_console_signs_in_and_shows_clusters_hosts_tasks_jobs_and_tokens(cluster, browser, shots, capsys):
    m = cluster.manager
    status, edge, _ = m.call("POST", "/api/v1/scheduler-clusters",
                             {"name": "edge-osaka", "bio": "the edge cluster", "scopes": {"idc": "osaka-1"}}, cluster.token)
    assert status == 201, edge
    api_names = sorted(c["name"] for c in m.call("GET", "/api/v1/scheduler-clusters", token=cluster.token)[1])

    # Signed out: the console asks for a sign-in, and refuses a wrong password.
    browser.get(m.rest + "/")
    wait(browser, lambda d: d.find_element("id", "signin-form").is_displayed(), what="the sign-in form")
    screenshot(browser, shots, "01-signin", capsys)
    browser.find_element("name", "name").send_keys("root")
    browser.find_element("name", "password").send_keys("not-the-password")
    browser.find_element("css selector", "#signin-form button").click()
    wait(browser, lambda d: "wrong name or password" in d.find_element("id", "error").text, what="the refusal")
    pw = browser.find_element("name", "password")
    pw.clear()
    pw.send_keys(ROOT_PASSWORD)
    browser.find_element("css selector", "#signin-form button").click()

    # Clusters, named as the API names them, with the live scheduler and seed peer.
    wait(browser, lambda d: len(texts(d, "section.cluster .cluster-name")) == len(api_names), what="the cluster list")
    assert sorted(texts(browser, "section.cluster .cluster-name")) == api_names
    first = browser.find_element("css selector", 'section.cluster[data-cluster="1"]').text
    assert "node" in first or "127.0.0.1:" in first, first
    assert "active" in first and "seed" in first, first
    assert "root (root)" in browser.find_element("id", "whoami").text
    screenshot(browser, shots, "02-clusters", capsys)

    # One cluster: its hosts (from the scheduler) and the task with each peer's progress.
    browser.find_element("css selector", 'section.cluster[data-cluster="1"] a.cluster-name').click()
    wait(browser, lambda d: len(d.find_elements("css selector", "tr.host")) == 2, what="two hosts")
    assert sorted(t.split(" ")[0] for t in texts(browser, "tr.host")) == ["node", "seed"]
    task = wait(browser, lambda d: [t for t in texts(d, "tr.task") if "/model.bin" in t], what="the task")[0]
    assert "Succeeded" in task and "3/3 pieces" in task, task
    assert "origin" in task and "peers" in task, "the seed fetched from the origin, the dfdaemon from peers: " + task
    screenshot(browser, shots, "03-cluster", capsys)

    # A file imported with dfcache: the persistent cache task, at its two replicas (the
    # importing node's and the seed peer's), and the copies listed by host.
    imported = cluster.root / "imported.bin"
    imported.write_bytes(os.urandom(5 << 20))
    res = run([binary("dfcache"), "import", imported, "--replica-count", "2", "--ttl", "2h",
               "--endpoint", cluster.root / "node.sock", "--no-progress"], timeout=60)
    assert res.returncode == 0, res.stderr
    task_id = res.stdout.strip()
    row = wait(browser, lambda d: [t for t in texts(d, "tr.persistent-cache-task") if "2 / 2" in t], timeout=30,
               what="the persistent cache task at two replicas")[0]
    assert task_id[:16] in row and "Succeeded" in row and "5.0 MiB" in row and "2 h" in row, row
    replicas = sorted(t.split(" ")[0] for t in texts(browser, "tr.replica"))
    assert replicas == ["node", "seed"], replicas
    assert all("replica" in t and "cached" not in t for t in texts(browser, "tr.replica"))
    screenshot(browser, shots, "03b-persistent-cache", capsys)

    # A preheat from the form becomes a job, and runs.
    browser.find_element("css selector", 'nav a[href="#/jobs"]').click()
    form = wait(browser, lambda d: d.find_element("id", "preheat-form"), what="the preheat form")
    form.find_element("name", "type").send_keys("file")
    url = f"http://{cluster.origin.address}/preheated.bin"
    (cluster.root / "origin" / "preheated.bin").write_bytes(os.urandom(3 << 20))
    form.find_element("name", "url").send_keys(url)
    form.find_element("css selector", 'input[name="cluster"][value="1"]').click()
    form.find_element("css selector", "button[type=submit]").click()
    wait(browser, lambda d: url in texts(d, "td.job-url"), what="the job in the list")
    jobs = m.call("GET", "/api/v1/jobs", token=cluster.token)[1]
    job = next(j for j in jobs if j["args"].get("url") == url)
    assert job["type"] == "preheat" and job["args"]["type"] == "file" and job["scheduler_cluster_ids"] == [1], job
    wait(browser, lambda d: any(url in t and "SUCCESS" in t for t in texts(d, "tr.job")), timeout=60, what="the job to succeed")
    # Its downloads, counted: one file on one seed peer.
    wait(browser, lambda d: any(url in t and "1/1 downloads" in t for t in texts(d, "tr.job")), timeout=10,
         what="the job's progress column")
    screenshot(browser, shots, "04-jobs", capsys)

    # Personal access tokens: made, shown once, usable on the open API, revoked.
    browser.find_element("css selector", 'nav a[href="#/tokens"]').click()
    form = wait(browser, lambda d: d.find_element("id", "token-form"), what="the token form")
    form.find_element("name", "name").send_keys("console-made")
    form.find_element("css selector", "button[type=submit]").click()
    token = wait(browser, lambda d: d.find_element("id", "new-token").text, what="the new token")
    status, _, _ = m.call("GET", "/oapi/v1/jobs", token=token)
    assert status == 200, "the token from the console works on /oapi/v1"
    screenshot(browser, shots, "05-tokens", capsys)
    row = next(r for r in browser.find_elements("css selector", "tr.token") if "console-made" in r.text)
    row.find_element("css selector", "button.danger").click()
    browser.switch_to.alert.accept()
    wait(browser, lambda d: not any("console-made" in t for t in texts(d, "tr.token")), what="the revoked token to go")
    assert m.call("GET", "/oapi/v1/jobs", token=token)[0] == 401

    # Signing out ends the session in the browser.
    browser.find_element("id", "signout").click()
    wait(browser, lambda d: d.find_element("id", "signin-form").is_displayed(), what="the sign-in form again")
    browser.get(m.rest + "/#/jobs")
    wait(browser, lambda d: d.find_element("id", "signin-form").is_displayed(), what="sign-in after sign-out")


def test_console_assets_forbid_inline_script(cluster):
    import urllib.request
    with urllib.request.urlopen(cluster.manager.rest + "/", timeout=10) as res:
        page = res.read().decode()
        csp = res.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script src=\"/console/app.js\"" in page and "<script>" not in page
    with urllib.request.urlopen(cluster.manager.rest + "/console/app.js", timeout=10) as res:
        script = res.read().decode()
    assert "innerHTML" not in script, "API text is never parsed as markup"
