package derp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/openderp/openderp/key"
)

// handshakeTimeout bounds writing the server key and, separately, reading
// the client's reply.
const handshakeTimeout = 10 * time.Second

// minClientInfoLen is the shortest ClientInfo payload: a key and a nonce.
const minClientInfoLen = KeyLen + NonceLen

// serverHandshake greets the client and reads and checks its ClientInfo.
// It returns the client's key, its declared information and the box key
// the two share, for sealing ServerInfo.
func (s *Server) serverHandshake(ctx context.Context, nc Conn, brw *bufio.ReadWriter, remoteAddr string) (key.NodePublic, *clientInfo, *key.SharedBox, error) {
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := s.sendServerKey(brw.Writer); err != nil {
		return key.NodePublic{}, nil, nil, fmt.Errorf("writing server key: %w", err)
	}
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	clientKey, info, box, err := s.recvClientInfo(brw.Reader)
	if err != nil {
		return key.NodePublic{}, nil, nil, fmt.Errorf("receive client key: %w", err)
	}
	if err := s.verifyClient(ctx, clientKey, info, remoteAddr); err != nil {
		return clientKey, info, nil, err
	}
	nc.SetDeadline(time.Time{})
	return clientKey, info, box, nil
}

func (s *Server) sendServerKey(bw *bufio.Writer) error {
	var buf [len(Magic) + KeyLen]byte
	if err := WriteFrame(bw, FrameServerKey, appendServerKey(buf[:0], s.pub)); err != nil {
		return err
	}
	return bw.Flush()
}

func (s *Server) recvClientInfo(br *bufio.Reader) (key.NodePublic, *clientInfo, *key.SharedBox, error) {
	t, n, err := ReadFrameHeader(br)
	if err != nil {
		return key.NodePublic{}, nil, nil, err
	}
	if t != FrameClientInfo {
		return key.NodePublic{}, nil, nil, fmt.Errorf("%w: got %v, want %v", ErrUnexpectedFrame, t, FrameClientInfo)
	}
	if n < minClientInfoLen {
		return key.NodePublic{}, nil, nil, malformed(t, int(n), "short client info")
	}
	if n > maxClientInfoLen {
		return key.NodePublic{}, nil, nil, &FrameTooLargeError{Type: t, Len: n, Max: maxClientInfoLen}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return key.NodePublic{}, nil, nil, err
	}
	clientKey, sealed, err := parseClientInfo(p)
	if err != nil {
		return key.NodePublic{}, nil, nil, err
	}
	if clientKey.IsZero() {
		return key.NodePublic{}, nil, nil, ErrZeroKey
	}
	// One key agreement serves both opening ClientInfo and sealing
	// ServerInfo; the server's half of it was prepared in NewServer.
	box, err := s.sharedBox(clientKey)
	if err != nil {
		return clientKey, nil, nil, ErrCannotOpenBox
	}
	js, ok := box.Open(sealed)
	if !ok {
		return clientKey, nil, nil, ErrCannotOpenBox
	}
	info := new(clientInfo)
	if err := json.Unmarshal(js, info); err != nil {
		return clientKey, nil, nil, fmt.Errorf("decoding client info JSON: %w", err)
	}
	// Checked before any admission check, so mesh peers are held to it
	// too; the connection ends without a ServerInfo.
	if !ValidAppName(info.AppName) {
		return clientKey, nil, nil, &InvalidAppNameError{Name: info.AppName}
	}
	return clientKey, info, box, nil
}

// sharedBox returns the box key the server shares with k.
func (s *Server) sharedBox(k key.NodePublic) (*key.SharedBox, error) {
	if s.agreer == nil { // the server's own key is zero
		return nil, key.ErrZeroKey
	}
	return s.agreer.SharedBox(k)
}

// serverInfoJSON is what every ServerInfo frame seals.
var serverInfoJSON = func() []byte {
	js, err := json.Marshal(serverInfo{Version: ProtocolVersion})
	if err != nil {
		panic(err)
	}
	return js
}()

// sendServerInfo seals and writes the ServerInfo frame and flushes it.
func (s *Server) sendServerInfo(bw *bufio.Writer, box *key.SharedBox) error {
	if err := WriteFrame(bw, FrameServerInfo, box.Seal(serverInfoJSON)); err != nil {
		return err
	}
	return bw.Flush()
}

// parseRemoteAddr parses "ip:port"; it returns the zero value when
// remoteAddr is not in that form, as for some WebSocket front ends.
func parseRemoteAddr(remoteAddr string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
