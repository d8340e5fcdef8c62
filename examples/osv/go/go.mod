module example.com/osv-go

go 1.22
