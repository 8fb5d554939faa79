import Foundation
import Testing
@testable import PeerDaemon

/// Directory indexes as the three common servers write them, and as a hostile one might.
@Suite struct DirectoryIndexTests {
    let root = URL(string: "http://origin.test:8080/pub/")!

    func names(_ html: String, page: String = "http://origin.test:8080/pub/") -> [String] {
        DirectoryIndex.entries(of: URL(string: page)!, html: html, under: root).map { $0.absoluteString }
    }

    @Test func apacheAutoindexWithSortLinksAndAParentLink() {
        let html = """
        <html><head><title>Index of /pub</title></head><body><h1>Index of /pub</h1>
        <table><tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th><th><a href="?C=N;O=D">Name</a></th>
        <th><a href="?C=M;O=A">Last modified</a></th></tr>
        <tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="/">Parent Directory</a></td></tr>
        <tr><td><a href="a%20b.txt">a b.txt</a></td></tr>
        <tr><td><a href="sub/">sub/</a></td></tr>
        </table></body></html>
        """
        #expect(names(html) == ["http://origin.test:8080/pub/a%20b.txt", "http://origin.test:8080/pub/sub/"])
    }

    @Test func nginxAutoindex() {
        let html = """
        <html><head><title>Index of /pub/</title></head><body><h1>Index of /pub/</h1><hr><pre><a href="../">../</a>
        <a href="sub/">sub/</a>                                               06-Dec-2026 20:00       -
        <a href="f.bin">f.bin</a>                                            06-Dec-2026 20:00     1024
        </pre><hr></body></html>
        """
        #expect(names(html) == ["http://origin.test:8080/pub/sub/", "http://origin.test:8080/pub/f.bin"])
    }

    @Test func pythonHTTPServerOnASubdirectoryPage() {
        let html = """
        <!DOCTYPE HTML><html lang="en"><head><meta charset="utf-8"><title>Directory listing for /pub/sub/</title></head>
        <body><h1>Directory listing for /pub/sub/</h1><hr><ul>
        <li><a href="deeper/">deeper/</a></li>
        <li><a href="x%26y.txt">x&amp;y.txt</a></li>
        </ul><hr></body></html>
        """
        #expect(names(html, page: "http://origin.test:8080/pub/sub/")
                == ["http://origin.test:8080/pub/sub/deeper/", "http://origin.test:8080/pub/sub/x%26y.txt"])
    }

    @Test func linksThatLeaveTheServerOrTheDirectoryAreNotEntries() {
        let html = """
        <a href="http://evil.test/x">a</a> <a href="//evil.test/y">b</a> <a href="../../etc/passwd">c</a>
        <a href="/pub2/z">d</a> <a href="javascript:alert(1)">e</a> <a href="sub/../../x">f</a>
        <a href="https://origin.test:8080/pub/scheme">g</a> <a href="http://origin.test:9090/pub/port">h</a>
        <a href="http://user:pw@origin.test:8080/pub/creds">i</a> <a href="#top">j</a> <a href="file?download=1">k</a>
        <a href="./">l</a> <a href="">m</a>
        <a HREF='Quoted.txt'>n</a> <a href=bare.txt>o</a> <a data-href="not-a-link">p</a>
        """
        #expect(names(html) == ["http://origin.test:8080/pub/Quoted.txt", "http://origin.test:8080/pub/bare.txt"])
    }

    @Test func repeatedLinksCountOnce() {
        #expect(names(#"<a href="f">f</a><a href="./f">f again</a><a href="/pub/f">and again</a>"#) == ["http://origin.test:8080/pub/f"])
    }
}
