package node

import (
	"errors"
	"net/http"

	"github.com/aspnode/asp/node/api"
)

var (
	errDuplicate = api.Errorf(http.StatusConflict, api.CodeDuplicate, "already exists")
	// errBusy is a remote refusal: the counterparty is sending a message in
	// the same session at this moment. The move was not applied by anyone.
	errBusy = errors.New("session busy: concurrent move")
)

func notFound(what, id string) error { return api.NotFound("%s %s not found", what, id) }
